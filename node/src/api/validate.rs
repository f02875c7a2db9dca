//! Request checks shared by the operations, made before anything is proposed or read, with
//! DynamoDB's messages.

use std::collections::BTreeMap;

use tern_proto::v1;
use tern_proto::value::{item_from_wire, item_to_wire, Item};
use tern_proto::ApiError;

/// Validates attribute values and puts numbers in canonical form.
pub fn canonical(
    attributes: BTreeMap<String, v1::AttributeValue>,
) -> Result<BTreeMap<String, v1::AttributeValue>, ApiError> {
    Ok(item_to_wire(&item_from_wire(attributes)?))
}

/// ExpressionAttributeValues, validated: in canonical wire form and as values.
pub fn expression_values(
    values: BTreeMap<String, v1::AttributeValue>,
) -> Result<(BTreeMap<String, v1::AttributeValue>, Item), ApiError> {
    let domain = item_from_wire(values)?;
    Ok((item_to_wire(&domain), domain))
}

/// ReturnValues: one of DynamoDB's values, and one this operation allows.
pub fn return_values(value: &str, allowed: &[&str]) -> Result<(), ApiError> {
    const ALL: [&str; 5] = ["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"];
    if value.is_empty() || allowed.contains(&value) {
        return Ok(());
    }
    if ALL.contains(&value) {
        return Err(ApiError::validation("Return values set to invalid value"));
    }
    Err(ApiError::validation(format!(
        "1 validation error detected: Value '{value}' at 'returnValues' failed to satisfy constraint: Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]"
    )))
}

/// ReturnValuesOnConditionCheckFailure: NONE or ALL_OLD.
pub fn return_on_failure(value: &str) -> Result<(), ApiError> {
    match value {
        "" | "NONE" | "ALL_OLD" => Ok(()),
        other => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{other}' at 'returnValuesOnConditionCheckFailure' failed to satisfy constraint: Member must satisfy enum value set: [ALL_OLD, NONE]"
        ))),
    }
}

/// Placeholders given to a request with no expression that could use them.
pub fn placeholders_need_expressions(
    names: &BTreeMap<String, String>,
    values: &BTreeMap<String, v1::AttributeValue>,
    expressions: &[(&str, &str)],
    value_expressions: &[(&str, &str)],
) -> Result<(), ApiError> {
    if !names.is_empty() && expressions.iter().all(|(_, text)| text.is_empty()) {
        return Err(ApiError::validation("ExpressionAttributeNames can only be specified when using expressions"));
    }
    if !values.is_empty() && value_expressions.iter().all(|(_, text)| text.is_empty()) {
        let null: Vec<&str> = value_expressions.iter().map(|(name, _)| *name).collect();
        let verb = if null.len() == 1 { "is" } else { "are" };
        return Err(ApiError::validation(format!(
            "ExpressionAttributeValues can only be specified when using expressions: {} {verb} null",
            null.join(" and ")
        )));
    }
    Ok(())
}

/// What a Query or Scan returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    AllAttributes,
    SpecificAttributes,
    Count,
}

/// Checks Select against the ProjectionExpression, as DynamoDB does.
pub fn select(value: &str, has_projection: bool) -> Result<Select, ApiError> {
    match (value, has_projection) {
        ("", false) | ("ALL_ATTRIBUTES", false) => Ok(Select::AllAttributes),
        ("", true) | ("SPECIFIC_ATTRIBUTES", true) => Ok(Select::SpecificAttributes),
        ("COUNT", false) => Ok(Select::Count),
        ("SPECIFIC_ATTRIBUTES", false) => {
            Err(ApiError::validation("Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES"))
        }
        ("ALL_ATTRIBUTES", true) => Err(ApiError::validation("Cannot specify the ProjectionExpression when choosing to get ALL_ATTRIBUTES")),
        ("COUNT", true) => Err(ApiError::validation("Cannot specify the ProjectionExpression when choosing to get only the Count")),
        ("ALL_PROJECTED_ATTRIBUTES", _) => Err(ApiError::validation("ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName")),
        (other, _) => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{other}' at 'select' failed to satisfy constraint: Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]"
        ))),
    }
}

/// Most segments of a parallel Scan.
pub const MAX_TOTAL_SEGMENTS: u32 = 1_000_000;

/// Checks Segment and TotalSegments; returns them when the Scan is parallel.
pub fn segments(segment: Option<u32>, total: Option<u32>) -> Result<Option<(u32, u32)>, ApiError> {
    match (segment, total) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(ApiError::validation(
            "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
        )),
        (None, Some(_)) => Err(ApiError::validation(
            "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
        )),
        (Some(_), Some(0)) => Err(ApiError::validation(
            "1 validation error detected: Value '0' at 'totalSegments' failed to satisfy constraint: Member must have value greater than or equal to 1",
        )),
        (Some(_), Some(t)) if t > MAX_TOTAL_SEGMENTS => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{t}' at 'totalSegments' failed to satisfy constraint: Member must have value less than or equal to {MAX_TOTAL_SEGMENTS}"
        ))),
        (Some(s), Some(t)) if s >= t => Err(ApiError::validation(format!(
            "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: {s} is not less than TotalSegments: {t}"
        ))),
        (Some(s), Some(t)) => Ok(Some((s, t))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_and_projection_combine_as_in_dynamodb() {
        assert_eq!(select("", true), Ok(Select::SpecificAttributes));
        assert_eq!(select("COUNT", false), Ok(Select::Count));
        assert_eq!(
            select("COUNT", true).unwrap_err().message,
            "Cannot specify the ProjectionExpression when choosing to get only the Count"
        );
        assert!(select("EVERYTHING", false).unwrap_err().message.contains("at 'select'"));
    }

    #[test]
    fn segments_are_checked() {
        assert_eq!(segments(Some(1), Some(4)), Ok(Some((1, 4))));
        assert_eq!(
            segments(Some(4), Some(4)).unwrap_err().message,
            "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: 4 is not less than TotalSegments: 4"
        );
        assert!(
            segments(Some(0), None).is_err()
                && segments(None, Some(2)).is_err()
                && segments(Some(0), Some(1_000_001)).is_err()
        );
    }

    #[test]
    fn return_values_allowed_per_operation() {
        assert_eq!(return_values("ALL_OLD", &["NONE", "ALL_OLD"]), Ok(()));
        assert_eq!(
            return_values("ALL_NEW", &["NONE", "ALL_OLD"]).unwrap_err().message,
            "Return values set to invalid value"
        );
        assert!(return_values("SOME", &["NONE"]).unwrap_err().message.starts_with("1 validation error detected"));
    }
}
