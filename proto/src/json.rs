//! DynamoDB JSON: `{"pk":{"S":"a"},"n":{"N":"1.5"}}`, as the AWS CLI and exports write it.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Map, Value as Json};

use crate::error::ApiError;
use crate::number::Number;
use crate::value::{AttributeValue, Item};

/// The DynamoDB JSON of one value: an object with exactly one type key.
pub fn value_to_json(value: &AttributeValue) -> Json {
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n.to_string() }),
        AttributeValue::B(b) => json!({ "B": BASE64.encode(b) }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null => json!({ "NULL": true }),
        AttributeValue::L(values) => {
            json!({ "L": values.iter().map(value_to_json).collect::<Vec<_>>() })
        }
        AttributeValue::M(fields) => json!({ "M": item_to_json(fields) }),
        AttributeValue::Ss(values) => json!({ "SS": values }),
        AttributeValue::Ns(values) => {
            json!({ "NS": values.iter().map(Number::to_string).collect::<Vec<_>>() })
        }
        AttributeValue::Bs(values) => {
            json!({ "BS": values.iter().map(|b| BASE64.encode(b)).collect::<Vec<_>>() })
        }
    }
}

/// The DynamoDB JSON object of an item.
pub fn item_to_json(item: &Item) -> Json {
    Json::Object(item.iter().map(|(k, v)| (k.clone(), value_to_json(v))).collect::<Map<_, _>>())
}

/// Reads an item (or a key) from DynamoDB JSON.
pub fn item_from_json(json: &Json) -> Result<Item, ApiError> {
    let Json::Object(fields) = json else {
        return Err(ApiError::validation(format!("Expected a JSON object of attributes, got {json}")));
    };
    fields.iter().map(|(k, v)| Ok((k.clone(), value_from_json(v)?))).collect()
}

/// Reads one value from DynamoDB JSON.
pub fn value_from_json(json: &Json) -> Result<AttributeValue, ApiError> {
    let invalid = |why: &str| ApiError::validation(format!("Invalid attribute value {json}: {why}"));
    let Json::Object(typed) = json else {
        return Err(invalid("expected an object with one type key such as \"S\""));
    };
    let mut entries = typed.iter();
    let (Some((type_key, inner)), None) = (entries.next(), entries.next()) else {
        return Err(ApiError::validation(
            "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
        ));
    };
    let string = |v: &Json| v.as_str().map(str::to_string).ok_or_else(|| invalid("expected a string"));
    let number = |v: &Json| -> Result<Number, ApiError> {
        let text = v.as_str().ok_or_else(|| invalid("a number is written as a string, e.g. {\"N\":\"1.5\"}"))?;
        text.parse().map_err(|e: crate::number::NumberError| ApiError::validation(e.to_string()))
    };
    let binary = |v: &Json| -> Result<Vec<u8>, ApiError> {
        let text = v.as_str().ok_or_else(|| invalid("binary is written as a base64 string"))?;
        BASE64.decode(text).map_err(|_| invalid("not valid base64"))
    };
    let array = |v: &Json| v.as_array().cloned().ok_or_else(|| invalid("expected an array"));
    Ok(match type_key.as_str() {
        "S" => AttributeValue::S(string(inner)?),
        "N" => AttributeValue::N(number(inner)?),
        "B" => AttributeValue::B(binary(inner)?),
        "BOOL" => AttributeValue::Bool(inner.as_bool().ok_or_else(|| invalid("expected true or false"))?),
        "NULL" => {
            match inner {
                Json::Bool(true) => AttributeValue::Null,
                _ => return Err(ApiError::validation(
                    "One or more parameter values were invalid: Null attribute value types must have the value of true",
                )),
            }
        }
        "L" => AttributeValue::L(array(inner)?.iter().map(value_from_json).collect::<Result<_, _>>()?),
        "M" => AttributeValue::M(item_from_json(inner)?),
        "SS" => AttributeValue::Ss(array(inner)?.iter().map(string).collect::<Result<_, _>>()?),
        "NS" => AttributeValue::Ns(array(inner)?.iter().map(number).collect::<Result<_, _>>()?),
        "BS" => AttributeValue::Bs(array(inner)?.iter().map(binary).collect::<Result<_, _>>()?),
        other => return Err(invalid(&format!("unknown type {other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips() {
        let text = r#"{"b":{"B":"AAEC"},"bool":{"BOOL":true},"bs":{"BS":["AA==","AQ=="]},
            "l":{"L":[{"S":"x"},{"N":"1"}]},"m":{"M":{"inner":{"NULL":true}}},"n":{"N":"-1.5"},
            "ns":{"NS":["1","2"]},"s":{"S":"text"},"ss":{"SS":["a","b"]}}"#;
        let json: Json = serde_json::from_str(text).unwrap();
        let item = item_from_json(&json).unwrap();
        assert_eq!(item["n"], AttributeValue::N("-1.5".parse().unwrap()));
        assert_eq!(item["b"], AttributeValue::B(vec![0, 1, 2]));
        assert_eq!(item_to_json(&item), json);
    }

    #[test]
    fn numbers_must_be_strings() {
        let error = value_from_json(&json!({"N": 5})).unwrap_err();
        assert!(error.message.contains("a number is written as a string"), "{}", error.message);
    }

    #[test]
    fn two_type_keys_are_rejected() {
        let error = value_from_json(&json!({"S": "a", "N": "1"})).unwrap_err();
        assert!(error.message.contains("more than one datatypes"));
    }
}
