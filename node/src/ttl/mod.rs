//! Item TTL: the rule for what counts as an expiry, as DynamoDB has it; the expiry index kept in the
//! apply path ([`apply`]); and the leader's sweeper that deletes expired items ([`sweeper`]).

pub mod apply;
pub mod sweeper;

use std::collections::BTreeMap;

use tern_proto::internal::StoredTable;
use tern_proto::v1::attribute_value::Value as Wire;
use tern_proto::v1::{AttributeValue, Identity, ItemPage, TimeToLiveSpecification};
use tern_proto::ApiError;

/// Values this far (or further) in the past are not expiries: DynamoDB ignores them as malformed.
pub const IGNORED_AGE_SECS: u64 = 5 * 365 * 86_400;
/// Most TTL deletes in one entry.
pub const MAX_EXPIRIES_PER_ENTRY: usize = 1000;
/// Most items indexed in one entry while TTL is being turned on.
pub const INDEX_BATCH: u32 = 5000;

/// The identity TTL deletes carry in stream records: a service, with Tern's own principal.
pub fn service_identity() -> Identity {
    Identity { r#type: "Service".into(), principal_id: "ttl.tern".into() }
}

/// The table's TTL attribute, when TTL is enabled.
pub fn attribute(table: &StoredTable) -> Option<&str> {
    table.time_to_live.as_ref().filter(|t| t.enabled).map(|t| t.attribute_name.as_str())
}

/// An item's expiry in epoch seconds: its TTL attribute when that is a Number not five years or more
/// before `now_secs`; anything else is ignored, as DynamoDB ignores it.
pub fn expiry(attributes: &BTreeMap<String, AttributeValue>, attribute: &str, now_secs: u64) -> Option<u64> {
    let Some(Wire::N(text)) = attributes.get(attribute).and_then(|v| v.value.as_ref()) else { return None };
    let seconds = text.parse::<f64>().ok().filter(|s| *s >= 0.0 && *s < u64::MAX as f64)?.floor() as u64;
    (seconds + IGNORED_AGE_SECS > now_secs).then_some(seconds)
}

/// Whether reads should hide the item: the table asks for it and the item's expiry has passed.
pub fn hidden(table: &StoredTable, attributes: &BTreeMap<String, AttributeValue>, now_secs: u64) -> bool {
    let Some(spec) = table.time_to_live.as_ref().filter(|t| t.enabled && t.hide_expired_items) else { return false };
    expiry(attributes, &spec.attribute_name, now_secs).is_some_and(|e| e <= now_secs)
}

/// Drops the items whose expiry has passed from a page, when the table hides them (a Tern option).
pub fn hide_expired(table: &StoredTable, mut page: ItemPage, now_secs: u64) -> ItemPage {
    if !table.time_to_live.as_ref().is_some_and(|t| t.enabled && t.hide_expired_items) {
        return page;
    }
    let versions = std::mem::take(&mut page.item_versions);
    let items = std::mem::take(&mut page.items);
    for (i, item) in items.into_iter().enumerate() {
        if !hidden(table, &item.attributes, now_secs) {
            page.items.push(item);
            page.item_versions.extend(versions.get(i).cloned());
        }
    }
    page.count = page.items.len() as u32;
    page
}

/// Checks a TimeToLiveSpecification against the table's current one, with DynamoDB's messages.
pub fn check_change(
    current: Option<&TimeToLiveSpecification>,
    wanted: &TimeToLiveSpecification,
) -> Result<(), ApiError> {
    if wanted.attribute_name.is_empty() || wanted.attribute_name.len() > 255 {
        return Err(ApiError::validation(
            "1 validation error detected: Value at 'timeToLiveSpecification.attributeName' failed to satisfy constraint: Member must have length between 1 and 255",
        ));
    }
    let enabled = current.is_some_and(|c| c.enabled);
    match (enabled, wanted.enabled) {
        (true, true) if current.is_some_and(|c| c.attribute_name == wanted.attribute_name) => {
            // Changing only the Tern option to hide expired items is allowed while enabled.
            Ok(())
        }
        (true, true) => Err(ApiError::validation(
            "TimeToLive is active on a different AttributeName: disable it before enabling it on another",
        )),
        (false, false) => Err(ApiError::validation("TimeToLive is already disabled")),
        (true, false) if current.is_some_and(|c| c.attribute_name != wanted.attribute_name) => {
            Err(ApiError::validation("TimeToLive is active on a different AttributeName"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(value: Wire) -> BTreeMap<String, AttributeValue> {
        [("exp".to_string(), AttributeValue { value: Some(value) })].into()
    }

    #[test]
    fn only_recent_numbers_are_expiries() {
        let now = 1_800_000_000;
        assert_eq!(expiry(&item(Wire::N("1800000100".into())), "exp", now), Some(1_800_000_100));
        assert_eq!(expiry(&item(Wire::N("1799999999.9".into())), "exp", now), Some(1_799_999_999));
        assert_eq!(expiry(&item(Wire::S("1800000100".into())), "exp", now), None, "not a Number");
        assert_eq!(expiry(&item(Wire::N(format!("{}", now - IGNORED_AGE_SECS))), "exp", now), None, "five years old");
        assert_eq!(expiry(&item(Wire::N("-5".into())), "exp", now), None);
        assert_eq!(expiry(&item(Wire::N("1800000100".into())), "other", now), None);
    }
}
