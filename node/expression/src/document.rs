//! Document paths resolved against placeholders, and reading and writing items at them.

use std::collections::BTreeMap;

use tern_proto::value::{AttributeValue, Item};
use tern_proto::ApiError;

use super::ast::{Name, Path, Step};

/// A resolved step: a map key (or top-level attribute) or a list index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A resolved document path.
pub type DocumentPath = Vec<Segment>;

/// ExpressionAttributeNames and ExpressionAttributeValues of one request.
pub struct Placeholders<'a> {
    pub names: &'a BTreeMap<String, String>,
    pub values: &'a BTreeMap<String, AttributeValue>,
}

impl Placeholders<'_> {
    /// The attribute name a name stands for (placeholders are checked before evaluation).
    pub fn name<'n>(&'n self, name: &'n Name) -> &'n str {
        match name {
            Name::Bare(n) => n,
            Name::Placeholder(p) => self.names.get(p).map(String::as_str).unwrap_or(p),
        }
    }

    /// The value a `:placeholder` stands for.
    pub fn value(&self, placeholder: &str) -> Result<&AttributeValue, ApiError> {
        self.values.get(placeholder).ok_or_else(|| {
            ApiError::validation(format!(
                "An expression attribute value used in expression is not defined; attribute value: {placeholder}"
            ))
        })
    }

    pub fn resolve(&self, path: &Path) -> DocumentPath {
        path.0
            .iter()
            .map(|step| match step {
                Step::Name(name) => Segment::Key(self.name(name).to_string()),
                Step::Index(i) => Segment::Index(*i as usize),
            })
            .collect()
    }
}

/// How DynamoDB prints a path in its errors: `[a, b, [2]]`.
pub fn describe(path: &[Segment]) -> String {
    let parts: Vec<String> = path
        .iter()
        .map(|s| match s {
            Segment::Key(k) => k.clone(),
            Segment::Index(i) => format!("[{i}]"),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// The value at a path, if the item has one there.
pub fn get<'i>(item: &'i Item, path: &[Segment]) -> Option<&'i AttributeValue> {
    let (Segment::Key(first), rest) = path.split_first()? else { return None };
    let mut value = item.get(first)?;
    for segment in rest {
        value = match (segment, value) {
            (Segment::Key(k), AttributeValue::M(map)) => map.get(k)?,
            (Segment::Index(i), AttributeValue::L(list)) => list.get(*i)?,
            _ => return None,
        };
    }
    Some(value)
}

fn invalid_path() -> ApiError {
    ApiError::validation("The document path provided in the update expression is invalid for update")
}

/// The container holding the last segment of `path`, which must exist.
fn parent_mut<'i>(item: &'i mut Item, path: &[Segment]) -> Result<Option<&'i mut AttributeValue>, ApiError> {
    let Some((Segment::Key(first), rest)) = path.split_first() else { return Err(invalid_path()) };
    if rest.is_empty() {
        return Ok(None);
    }
    let mut value = item.get_mut(first).ok_or_else(invalid_path)?;
    for segment in &rest[..rest.len() - 1] {
        value = match (segment, value) {
            (Segment::Key(k), AttributeValue::M(map)) => map.get_mut(k).ok_or_else(invalid_path)?,
            (Segment::Index(i), AttributeValue::L(list)) => list.get_mut(*i).ok_or_else(invalid_path)?,
            _ => return Err(invalid_path()),
        };
    }
    Ok(Some(value))
}

/// Sets the value at a path; the path's parent must exist. A list index past the end appends.
pub fn set(item: &mut Item, path: &[Segment], value: AttributeValue) -> Result<(), ApiError> {
    let last = path.last().ok_or_else(invalid_path)?;
    match (parent_mut(item, path)?, last) {
        (None, Segment::Key(k)) => {
            item.insert(k.clone(), value);
        }
        (Some(AttributeValue::M(map)), Segment::Key(k)) => {
            map.insert(k.clone(), value);
        }
        (Some(AttributeValue::L(list)), Segment::Index(i)) => {
            if *i < list.len() {
                list[*i] = value;
            } else {
                list.push(value);
            }
        }
        _ => return Err(invalid_path()),
    }
    Ok(())
}

/// Removes the value at a path; nothing happens when it is absent.
pub fn remove(item: &mut Item, path: &[Segment]) -> Result<(), ApiError> {
    let last = path.last().ok_or_else(invalid_path)?;
    match (parent_mut(item, path)?, last) {
        (None, Segment::Key(k)) => {
            item.remove(k);
        }
        (Some(AttributeValue::M(map)), Segment::Key(k)) => {
            map.remove(k);
        }
        (Some(AttributeValue::L(list)), Segment::Index(i)) => {
            if *i < list.len() {
                list.remove(*i);
            }
        }
        _ => return Err(invalid_path()),
    }
    Ok(())
}

/// The first pair of paths that reach one place as a map key in one and a list index in the other.
pub fn conflicting<'p>(paths: &[&'p DocumentPath]) -> Option<(&'p DocumentPath, &'p DocumentPath)> {
    for (i, a) in paths.iter().enumerate() {
        for b in &paths[i + 1..] {
            let differ = a.iter().zip(b.iter()).position(|(x, y)| x != y);
            if let Some(at) = differ {
                if matches!(
                    (&a[at], &b[at]),
                    (Segment::Key(_), Segment::Index(_)) | (Segment::Index(_), Segment::Key(_))
                ) {
                    return Some((a, b));
                }
            }
        }
    }
    None
}

/// The first pair of paths where one is the other or lies inside it.
pub fn overlapping<'p>(paths: &[&'p DocumentPath]) -> Option<(&'p DocumentPath, &'p DocumentPath)> {
    for (i, a) in paths.iter().enumerate() {
        for b in &paths[i + 1..] {
            if a.starts_with(b) || b.starts_with(a) {
                return Some((a, b));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Segment {
        Segment::Key(k.into())
    }

    #[test]
    fn set_and_remove_nested_values() {
        let mut item: Item = [(
            "a".to_string(),
            AttributeValue::M([("l".to_string(), AttributeValue::L(vec![AttributeValue::Null]))].into()),
        )]
        .into();
        set(&mut item, &[key("a"), key("b")], AttributeValue::Bool(true)).unwrap();
        set(&mut item, &[key("a"), key("l"), Segment::Index(9)], AttributeValue::S("x".into())).unwrap();
        assert_eq!(get(&item, &[key("a"), key("l"), Segment::Index(1)]), Some(&AttributeValue::S("x".into())));
        remove(&mut item, &[key("a"), key("l"), Segment::Index(0)]).unwrap();
        assert_eq!(get(&item, &[key("a"), key("l"), Segment::Index(0)]), Some(&AttributeValue::S("x".into())));
        assert_eq!(
            set(&mut item, &[key("missing"), key("b")], AttributeValue::Null).unwrap_err().message,
            "The document path provided in the update expression is invalid for update"
        );
    }
}
