//! Rust structs to items and back, through `serde_dynamo`.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_dynamo::AttributeValue as Sd;
use tern_proto::{AttributeValue, Item};

use crate::Error;

/// Serialises a Rust value (a struct or map) into an item.
pub fn to_item<T: Serialize>(value: &T) -> Result<Item, Error> {
    let item: HashMap<String, Sd> = serde_dynamo::to_item(value).map_err(|e| Error::Serde(e.to_string()))?;
    item.into_iter().map(|(k, v)| Ok((k, from_sd(v)?))).collect()
}

/// Deserialises an item into a Rust value.
pub fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, Error> {
    let item: HashMap<String, Sd> = item.into_iter().map(|(k, v)| (k, to_sd(v))).collect();
    serde_dynamo::from_item(item).map_err(|e| Error::Serde(e.to_string()))
}

fn number(text: &str) -> Result<tern_proto::Number, Error> {
    text.parse().map_err(|e: tern_proto::number::NumberError| Error::Serde(e.to_string()))
}

fn from_sd(value: Sd) -> Result<AttributeValue, Error> {
    Ok(match value {
        Sd::N(n) => AttributeValue::N(number(&n)?),
        Sd::S(s) => AttributeValue::S(s),
        Sd::Bool(b) => AttributeValue::Bool(b),
        Sd::B(b) => AttributeValue::B(b),
        Sd::Null(_) => AttributeValue::Null,
        Sd::M(m) => AttributeValue::M(m.into_iter().map(|(k, v)| Ok((k, from_sd(v)?))).collect::<Result<_, Error>>()?),
        Sd::L(l) => AttributeValue::L(l.into_iter().map(from_sd).collect::<Result<_, _>>()?),
        Sd::Ss(s) => AttributeValue::Ss(s),
        Sd::Ns(n) => AttributeValue::Ns(n.iter().map(|t| number(t)).collect::<Result<_, _>>()?),
        Sd::Bs(b) => AttributeValue::Bs(b),
    })
}

fn to_sd(value: AttributeValue) -> Sd {
    match value {
        AttributeValue::S(s) => Sd::S(s),
        AttributeValue::N(n) => Sd::N(n.to_string()),
        AttributeValue::B(b) => Sd::B(b),
        AttributeValue::Bool(b) => Sd::Bool(b),
        AttributeValue::Null => Sd::Null(true),
        AttributeValue::L(l) => Sd::L(l.into_iter().map(to_sd).collect()),
        AttributeValue::M(m) => Sd::M(m.into_iter().map(|(k, v)| (k, to_sd(v))).collect()),
        AttributeValue::Ss(s) => Sd::Ss(s),
        AttributeValue::Ns(n) => Sd::Ns(n.iter().map(|n| n.to_string()).collect()),
        AttributeValue::Bs(b) => Sd::Bs(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Order {
        pk: String,
        sk: u64,
        total: f64,
        tags: Vec<String>,
        note: Option<String>,
    }

    #[test]
    fn a_struct_round_trips_through_an_item() {
        let order = Order { pk: "c#1".into(), sk: 42, total: 12.5, tags: vec!["a".into()], note: None };
        let item = to_item(&order).unwrap();
        assert_eq!(item["sk"], AttributeValue::N(42u64.into()));
        assert_eq!(item["total"], AttributeValue::N("12.5".parse().unwrap()));
        assert_eq!(from_item::<Order>(item).unwrap(), order);
    }
}
