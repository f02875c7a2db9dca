//! DynamoDB attribute values as Rust types, their validation, size and wire form.

use std::collections::BTreeMap;

use crate::error::ApiError;
use crate::number::Number;
use crate::v1;
use crate::v1::attribute_value::Value as Wire;

/// Deepest nesting of lists and maps DynamoDB accepts.
pub const MAX_NESTING: usize = 32;
/// Largest item DynamoDB stores, in bytes (names and values together).
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// An item (or a key): attribute names to values.
pub type Item = BTreeMap<String, AttributeValue>;

/// One DynamoDB attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    S(String),
    N(Number),
    B(Vec<u8>),
    Bool(bool),
    Null,
    L(Vec<AttributeValue>),
    M(Item),
    Ss(Vec<String>),
    Ns(Vec<Number>),
    Bs(Vec<Vec<u8>>),
}

impl AttributeValue {
    /// DynamoDB's name of the value's type: `S`, `N`, `B`, `BOOL`, `NULL`, `L`, `M`, `SS`, `NS`, `BS`.
    pub fn type_name(&self) -> &'static str {
        match self {
            AttributeValue::S(_) => "S",
            AttributeValue::N(_) => "N",
            AttributeValue::B(_) => "B",
            AttributeValue::Bool(_) => "BOOL",
            AttributeValue::Null => "NULL",
            AttributeValue::L(_) => "L",
            AttributeValue::M(_) => "M",
            AttributeValue::Ss(_) => "SS",
            AttributeValue::Ns(_) => "NS",
            AttributeValue::Bs(_) => "BS",
        }
    }

    /// The value's size as DynamoDB counts it towards the 400 KB item limit.
    pub fn size_bytes(&self) -> usize {
        match self {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => n.size_bytes(),
            AttributeValue::B(b) => b.len(),
            AttributeValue::Bool(_) | AttributeValue::Null => 1,
            AttributeValue::L(values) => 3 + values.iter().map(|v| 1 + v.size_bytes()).sum::<usize>(),
            AttributeValue::M(fields) => 3 + fields.iter().map(|(k, v)| 1 + k.len() + v.size_bytes()).sum::<usize>(),
            AttributeValue::Ss(values) => values.iter().map(String::len).sum(),
            AttributeValue::Ns(values) => values.iter().map(Number::size_bytes).sum(),
            AttributeValue::Bs(values) => values.iter().map(Vec::len).sum(),
        }
    }

    /// Reads and validates a wire value: numbers parsed exactly, sets non-empty and without duplicates,
    /// nesting within DynamoDB's limit.
    pub fn from_wire(value: v1::AttributeValue) -> Result<Self, ApiError> {
        Self::from_wire_at(value, 0)
    }

    fn from_wire_at(value: v1::AttributeValue, depth: usize) -> Result<Self, ApiError> {
        if depth > MAX_NESTING {
            return Err(ApiError::validation("Nesting Levels have exceeded supported limits"));
        }
        let Some(value) = value.value else {
            return Err(ApiError::validation(
                "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes",
            ));
        };
        Ok(match value {
            Wire::S(s) => AttributeValue::S(s),
            Wire::N(n) => AttributeValue::N(parse_number(&n)?),
            Wire::B(b) => AttributeValue::B(b),
            Wire::Bool(b) => AttributeValue::Bool(b),
            Wire::Null(true) => AttributeValue::Null,
            Wire::Null(false) => {
                return Err(ApiError::validation(
                    "One or more parameter values were invalid: Null attribute value types must have the value of true",
                ))
            }
            Wire::L(list) => AttributeValue::L(
                list.values.into_iter().map(|v| Self::from_wire_at(v, depth + 1)).collect::<Result<_, _>>()?,
            ),
            Wire::M(map) => AttributeValue::M(
                map.fields
                    .into_iter()
                    .map(|(k, v)| Ok((k, Self::from_wire_at(v, depth + 1)?)))
                    .collect::<Result<_, ApiError>>()?,
            ),
            Wire::Ss(set) => AttributeValue::Ss(checked_set("string", set.values, |s| s.clone(), |s| s.clone())?),
            Wire::Ns(set) => {
                let numbers = set.values.iter().map(|n| parse_number(n)).collect::<Result<Vec<_>, _>>()?;
                AttributeValue::Ns(checked_set("number", numbers, |n| n.clone(), |n| n.to_string())?)
            }
            Wire::Bs(set) => {
                AttributeValue::Bs(checked_set("binary", set.values, |b| b.clone(), |b| format!("{b:?}"))?)
            }
        })
    }

    /// The wire form, numbers in canonical text.
    pub fn to_wire(&self) -> v1::AttributeValue {
        let value = match self {
            AttributeValue::S(s) => Wire::S(s.clone()),
            AttributeValue::N(n) => Wire::N(n.to_string()),
            AttributeValue::B(b) => Wire::B(b.clone()),
            AttributeValue::Bool(b) => Wire::Bool(*b),
            AttributeValue::Null => Wire::Null(true),
            AttributeValue::L(values) => Wire::L(v1::ListValue { values: values.iter().map(Self::to_wire).collect() }),
            AttributeValue::M(fields) => Wire::M(v1::MapValue { fields: item_to_wire(fields) }),
            AttributeValue::Ss(values) => Wire::Ss(v1::StringSet { values: values.clone() }),
            AttributeValue::Ns(values) => {
                Wire::Ns(v1::NumberSet { values: values.iter().map(Number::to_string).collect() })
            }
            AttributeValue::Bs(values) => Wire::Bs(v1::BinarySet { values: values.clone() }),
        };
        v1::AttributeValue { value: Some(value) }
    }
}

fn parse_number(text: &str) -> Result<Number, ApiError> {
    text.parse::<Number>().map_err(|e| ApiError::validation(e.to_string()))
}

fn checked_set<T: Ord + std::fmt::Debug, K: Ord>(
    kind: &str,
    values: Vec<T>,
    key: impl Fn(&T) -> K,
    show: impl Fn(&T) -> String,
) -> Result<Vec<T>, ApiError> {
    if values.is_empty() {
        return Err(ApiError::validation(format!(
            "One or more parameter values were invalid: An {kind} set  may not be empty"
        )));
    }
    let mut keys: Vec<K> = values.iter().map(key).collect();
    keys.sort();
    if keys.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err(ApiError::validation(format!(
            "One or more parameter values were invalid: Input collection [{}] contains duplicates.",
            values.iter().map(show).collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(values)
}

/// Reads and validates a wire item: every value valid, no empty attribute name, within 400 KB.
pub fn item_from_wire(attributes: BTreeMap<String, v1::AttributeValue>) -> Result<Item, ApiError> {
    let mut item = Item::new();
    for (name, value) in attributes {
        if name.is_empty() {
            return Err(ApiError::validation(
                "One or more parameter values were invalid: An attribute name may not be empty",
            ));
        }
        item.insert(name, AttributeValue::from_wire(value)?);
    }
    if item_size_bytes(&item) > MAX_ITEM_BYTES {
        return Err(ApiError::validation("Item size has exceeded the maximum allowed size"));
    }
    Ok(item)
}

/// The wire form of an item.
pub fn item_to_wire(item: &Item) -> BTreeMap<String, v1::AttributeValue> {
    item.iter().map(|(k, v)| (k.clone(), v.to_wire())).collect()
}

/// An item's size as DynamoDB counts it: every attribute's name and value.
pub fn item_size_bytes(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + v.size_bytes()).sum()
}

macro_rules! from_rust {
    ($($t:ty => $body:expr),* $(,)?) => {$(
        impl From<$t> for AttributeValue {
            fn from(value: $t) -> Self {
                let f: fn($t) -> AttributeValue = $body;
                f(value)
            }
        }
    )*};
}

from_rust! {
    String => AttributeValue::S,
    &str => |s| AttributeValue::S(s.to_string()),
    bool => AttributeValue::Bool,
    Number => AttributeValue::N,
    Vec<u8> => AttributeValue::B,
    i32 => |n| AttributeValue::N(n.into()),
    i64 => |n| AttributeValue::N(n.into()),
    u32 => |n| AttributeValue::N(n.into()),
    u64 => |n| AttributeValue::N(n.into()),
    usize => |n| AttributeValue::N(n.into()),
    Vec<AttributeValue> => AttributeValue::L,
    Item => AttributeValue::M,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(value: Wire) -> v1::AttributeValue {
        v1::AttributeValue { value: Some(value) }
    }

    #[test]
    fn numbers_are_read_exactly_and_canonically() {
        let value = AttributeValue::from_wire(wire(Wire::N("012.500".into()))).unwrap();
        assert_eq!(value.to_wire(), wire(Wire::N("12.5".into())));
    }

    #[test]
    fn empty_and_duplicate_sets_are_rejected() {
        let empty = AttributeValue::from_wire(wire(Wire::Ss(v1::StringSet { values: vec![] }))).unwrap_err();
        assert_eq!(empty.message, "One or more parameter values were invalid: An string set  may not be empty");
        let dup = AttributeValue::from_wire(wire(Wire::Ns(v1::NumberSet { values: vec!["1".into(), "1.0".into()] })));
        assert!(dup.unwrap_err().message.contains("contains duplicates"));
    }

    #[test]
    fn a_value_without_a_type_is_rejected() {
        let error = AttributeValue::from_wire(v1::AttributeValue { value: None }).unwrap_err();
        assert_eq!(error.kind, crate::error::ErrorKind::ValidationException);
    }

    #[test]
    fn nesting_beyond_32_levels_is_rejected() {
        let mut value = wire(Wire::S("leaf".into()));
        for _ in 0..32 {
            value = wire(Wire::L(v1::ListValue { values: vec![value] }));
        }
        assert!(AttributeValue::from_wire(value.clone()).is_ok());
        let deeper = wire(Wire::L(v1::ListValue { values: vec![value] }));
        assert_eq!(
            AttributeValue::from_wire(deeper).unwrap_err().message,
            "Nesting Levels have exceeded supported limits"
        );
    }

    #[test]
    fn items_over_400_kb_are_rejected() {
        let fits = BTreeMap::from([("a".to_string(), wire(Wire::S("x".repeat(MAX_ITEM_BYTES - 1))))]);
        assert!(item_from_wire(fits).is_ok());
        let over = BTreeMap::from([("ab".to_string(), wire(Wire::S("x".repeat(MAX_ITEM_BYTES - 1))))]);
        assert_eq!(item_from_wire(over).unwrap_err().message, "Item size has exceeded the maximum allowed size");
    }
}
