//! Listings that page themselves, as the AWS CLI's do: `--max-items` and `--starting-token`.

use std::future::Future;

use serde_json::{json, Value as Json};

/// Where a listing resumes, as the AWS CLI's `--starting-token`: base64 of
/// `{"NextToken": "<the call's token>", "boto_truncate_amount": N}`, N the entries of that page already
/// printed. A token that is not one is the call's own NextToken.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resume {
    token: String,
    skip: usize,
}

impl Resume {
    pub fn decode(text: Option<&str>) -> Resume {
        use base64::Engine;
        let Some(text) = text else { return Resume::default() };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Json>(&bytes).ok());
        match decoded.as_ref().and_then(|d| Some((d.get("NextToken")?.as_str()?, d))) {
            Some((token, decoded)) => Resume {
                token: token.to_string(),
                skip: decoded.get("boto_truncate_amount").and_then(Json::as_u64).unwrap_or(0) as usize,
            },
            None => Resume { token: text.to_string(), skip: 0 },
        }
    }

    fn encode(&self) -> String {
        use base64::Engine;
        let mut token = json!({ "NextToken": self.token });
        if self.skip > 0 {
            token["boto_truncate_amount"] = json!(self.skip);
        }
        base64::engine::general_purpose::STANDARD.encode(token.to_string())
    }
}

/// Lists every page (`fetch(token)` gives one page's entries and the next token, empty after the last)
/// from `start` until done or `max_items`; the NextToken to print when more are left.
pub async fn list_pages<T, F, Fut>(
    start: Resume,
    max_items: Option<u64>,
    mut fetch: F,
) -> anyhow::Result<(Vec<T>, Option<String>)>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, String), tern_client::Error>>,
{
    let max = max_items.map(|max| usize::try_from(max).unwrap_or(usize::MAX));
    let full = |listed: usize| max.is_some_and(|max| listed >= max);
    let mut listed = Vec::new();
    let Resume { mut token, mut skip } = start;
    loop {
        let (entries, next) = fetch(token.clone()).await?;
        let on_page = entries.len();
        let mut taken = skip.min(on_page);
        for entry in entries.into_iter().skip(skip) {
            if full(listed.len()) {
                break;
            }
            listed.push(entry);
            taken += 1;
        }
        skip = 0;
        if full(listed.len()) && taken < on_page {
            return Ok((listed, Some(Resume { token, skip: taken }.encode())));
        }
        if next.is_empty() {
            return Ok((listed, None));
        }
        if full(listed.len()) {
            return Ok((listed, Some(Resume { token: next, skip: 0 }.encode())));
        }
        token = next;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn resume_tokens_are_the_aws_clis() {
        let resume = Resume { token: "0179".into(), skip: 2 };
        assert_eq!(Resume::decode(Some(resume.encode().as_str())), resume);
        let page_start = Resume { token: "0179".into(), skip: 0 };
        assert_eq!(Resume::decode(Some(page_start.encode().as_str())), page_start);
        // A service's own NextToken is taken as it is.
        assert_eq!(Resume::decode(Some("01796047320000-2d8752fd")), page_start_of("01796047320000-2d8752fd"));
        assert_eq!(Resume::decode(None), Resume::default());
    }

    fn page_start_of(token: &str) -> Resume {
        Resume { token: token.into(), skip: 0 }
    }

    /// Pages of a listing: token "" is the first, each page's next token names the next one.
    fn pages() -> BTreeMap<String, (Vec<&'static str>, String)> {
        BTreeMap::from([
            (String::new(), (vec!["a", "b", "c"], "p2".to_string())),
            ("p2".to_string(), (vec!["d", "e"], "p3".to_string())),
            ("p3".to_string(), (vec!["f"], String::new())),
        ])
    }

    async fn list(start: Resume, max: Option<u64>) -> (Vec<&'static str>, Option<String>) {
        let pages = pages();
        list_pages(start, max, |token| {
            let page = pages[&token].clone();
            async move { Ok::<_, tern_client::Error>(page) }
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn listings_page_themselves_and_stop_at_max_items() {
        assert_eq!(list(Resume::default(), None).await, (vec!["a", "b", "c", "d", "e", "f"], None));
        // Within a page: the token resumes after what was printed.
        let (first, token) = list(Resume::default(), Some(2)).await;
        assert_eq!(first, ["a", "b"]);
        let token = token.expect("more are left");
        assert_eq!(Resume::decode(Some(token.as_str())), Resume { token: String::new(), skip: 2 });
        let (second, token) = list(Resume::decode(Some(token.as_str())), Some(2)).await;
        assert_eq!(second, ["c", "d"]);
        let (third, token) = list(Resume::decode(token.as_deref()), Some(2)).await;
        assert_eq!(third, ["e", "f"]);
        assert_eq!(token, None);
        // At a page's end: the service's token.
        let (page, token) = list(Resume::default(), Some(3)).await;
        assert_eq!(page, ["a", "b", "c"]);
        assert_eq!(Resume::decode(token.as_deref()), page_start_of("p2"));
        // Exactly all of them: no token.
        assert_eq!(list(Resume::default(), Some(6)).await.1, None);
        // A service's own NextToken as --starting-token.
        assert_eq!(list(Resume::decode(Some("p3")), None).await, (vec!["f"], None));
    }
}
