//! Reading CLI parameters as the AWS CLI does: JSON, `file://` paths, and the shorthand `Key=Value,Key=Value`.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use serde_json::Value as Json;
use tern_proto::v1;
use tern_proto::value::item_to_wire;

/// The text of a parameter, read from a file when it is `file://PATH`.
pub fn text(value: &str) -> anyhow::Result<String> {
    match value.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}")),
        None => Ok(value.to_string()),
    }
}

/// A JSON parameter.
pub fn json(value: &str) -> anyhow::Result<Json> {
    let text = text(value)?;
    serde_json::from_str(&text).with_context(|| format!("Error parsing parameter: Invalid JSON: {text}"))
}

/// A DynamoDB JSON item or key, in wire form.
pub fn item(value: &str) -> anyhow::Result<BTreeMap<String, v1::AttributeValue>> {
    Ok(item_to_wire(&tern_proto::json::item_from_json(&json(value)?)?))
}

/// A JSON object of strings (`--expression-attribute-names`).
pub fn names(value: &str) -> anyhow::Result<BTreeMap<String, String>> {
    serde_json::from_value(json(value)?).context("ExpressionAttributeNames must be an object of strings")
}

/// An optional `--expression-attribute-names`: empty when absent.
pub fn optional_names(value: Option<&str>) -> anyhow::Result<BTreeMap<String, String>> {
    Ok(value.map(names).transpose()?.unwrap_or_default())
}

/// An optional DynamoDB JSON parameter (`--expression-attribute-values`): empty when absent.
pub fn optional_item(value: Option<&str>) -> anyhow::Result<BTreeMap<String, v1::AttributeValue>> {
    Ok(value.map(item).transpose()?.unwrap_or_default())
}

/// Shorthand `AttributeName=pk,AttributeType=S` or a JSON object, as one map of strings (a JSON boolean or
/// number as its text: `{"Enabled":true}` reads as `Enabled=true` does).
pub fn structure(value: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let value = text(value)?;
    if value.trim_start().starts_with('{') {
        return scalars(serde_json::from_str(&value).context("expected a JSON object")?);
    }
    value
        .split(',')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => Ok((k.trim().to_string(), v.trim().to_string())),
            None => bail!("Error parsing parameter: expected Key=Value, got {pair:?}"),
        })
        .collect()
}

/// A list parameter: a JSON array of objects, or several shorthand structures.
pub fn structures(values: &[String]) -> anyhow::Result<Vec<BTreeMap<String, String>>> {
    if let [single] = values {
        let text = text(single)?;
        if text.trim_start().starts_with('[') {
            let objects: Vec<BTreeMap<String, Json>> =
                serde_json::from_str(&text).context("expected a JSON array of objects")?;
            return objects.into_iter().map(scalars).collect();
        }
    }
    values.iter().map(|v| structure(v)).collect()
}

/// A JSON object's members as the shorthand's text: strings as they are, booleans and numbers as written.
fn scalars(object: BTreeMap<String, Json>) -> anyhow::Result<BTreeMap<String, String>> {
    object
        .into_iter()
        .map(|(key, value)| match value {
            Json::String(text) => Ok((key, text)),
            Json::Bool(_) | Json::Number(_) => Ok((key, value.to_string())),
            other => bail!("{key} must be a string, a number or a boolean, got {other}"),
        })
        .collect()
}

/// A parameter only read as a JSON object (or `file://` of one): anything else is refused with an example.
pub fn json_object(text: &str, name: &str, example: &str) -> anyhow::Result<Json> {
    let text = self::text(text)?;
    if !text.trim_start().starts_with('{') {
        bail!("Error parsing parameter {name}: expected a JSON object such as {example} (or file://PATH of one)");
    }
    json(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorthand_and_json_read_alike() {
        let shorthand =
            structures(&["AttributeName=pk,AttributeType=S".into(), "AttributeName=sk,AttributeType=N".into()])
                .unwrap();
        let json = structures(&[
            r#"[{"AttributeName":"pk","AttributeType":"S"},{"AttributeName":"sk","AttributeType":"N"}]"#.into(),
        ])
        .unwrap();
        assert_eq!(shorthand, json);
        assert_eq!(shorthand[1]["AttributeType"], "N");
    }

    #[test]
    fn json_booleans_and_numbers_read_as_the_shorthand_does() {
        let json = structure(r#"{"Enabled":true,"AttributeName":"expires_at","RetentionDays":30}"#).unwrap();
        assert_eq!(json, structure("Enabled=true,AttributeName=expires_at,RetentionDays=30").unwrap());
        assert!(structure(r#"{"Enabled":{"nested":true}}"#).is_err());
        let list = structures(&[r#"[{"AttributeName":"n","Order":1}]"#.into()]).unwrap();
        assert_eq!(list[0]["Order"], "1");
    }

    #[test]
    fn file_parameters_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("item.json");
        std::fs::write(&path, r#"{"pk":{"S":"a"}}"#).unwrap();
        let item = item(&format!("file://{}", path.display())).unwrap();
        assert_eq!(item["pk"].value, Some(v1::attribute_value::Value::S("a".into())));
    }
}
