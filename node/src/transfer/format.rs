//! Items as DynamoDB's exports write them, one per line: DynamoDB JSON (`{"Item":{…}}`) and Amazon Ion
//! (`$ion_1_0 {Item:{…}}`, with DynamoDB's type mapping: numbers as exact decimals, binary as blobs,
//! sets as lists annotated `$dynamodb_SS`, `$dynamodb_NS`, `$dynamodb_BS`); an incremental export's
//! compacted records (`Metadata`, `Keys`, `NewImage`, `OldImage`); and the same lines read back.

use std::io::Read;

use ion_rs::{Decimal, Element, Value as Ion};
use serde_json::{json, Map, Value as Json};
use tern_proto::json::{item_from_json, item_to_json};
use tern_proto::{AttributeValue, Item, Number};

/// An export's (and a JSON or Ion import's) format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    DynamoDbJson,
    Ion,
}

impl Format {
    /// DynamoDB's name (`DYNAMODB_JSON`, `ION`).
    pub fn name(self) -> &'static str {
        match self {
            Format::DynamoDbJson => "DYNAMODB_JSON",
            Format::Ion => "ION",
        }
    }

    /// The format DynamoDB's name names; none for another name.
    pub fn named(name: &str) -> Option<Format> {
        match name {
            "DYNAMODB_JSON" => Some(Format::DynamoDbJson),
            "ION" => Some(Format::Ion),
            _ => None,
        }
    }

    /// The data files' extension: `json.gz` or `ion.gz`.
    pub fn extension(self) -> &'static str {
        match self {
            Format::DynamoDbJson => "json.gz",
            Format::Ion => "ion.gz",
        }
    }
}

/// One item of an incremental export, compacted over its window: its key attributes, its state at the
/// window's end (none when deleted) and just before its start (none when it did not exist), and the
/// time of its last change in the window.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub keys: Item,
    pub new_image: Option<Item>,
    pub old_image: Option<Item>,
    pub write_timestamp_micros: u64,
}

/// A full export's line for `item` (without the newline).
pub fn item_line(format: Format, item: &Item) -> String {
    match format {
        Format::DynamoDbJson => json!({ "Item": item_to_json(item) }).to_string(),
        Format::Ion => {
            let mut line = String::from("$ion_1_0 {Item:");
            ion::item(&mut line, item);
            line.push('}');
            line
        }
    }
}

/// An incremental export's line for `change` (without the newline). Which images it holds is the
/// caller's choice (NEW_IMAGE drops the old image).
pub fn change_line(format: Format, change: &Change) -> String {
    match format {
        Format::DynamoDbJson => {
            let micros = change.write_timestamp_micros.to_string();
            let mut line = Map::new();
            line.insert("Metadata".into(), json!({ "WriteTimestampMicros": { "N": micros } }));
            line.insert("Keys".into(), item_to_json(&change.keys));
            if let Some(new) = &change.new_image {
                line.insert("NewImage".into(), item_to_json(new));
            }
            if let Some(old) = &change.old_image {
                line.insert("OldImage".into(), item_to_json(old));
            }
            Json::Object(line).to_string()
        }
        Format::Ion => {
            let mut line = String::from("$ion_1_0 {Record:{Keys:");
            ion::item(&mut line, &change.keys);
            line.push_str(&format!(",Metadata:{{WriteTimestampMicros:{}.}}", change.write_timestamp_micros));
            if let Some(old) = &change.old_image {
                line.push_str(",OldImage:");
                ion::item(&mut line, old);
            }
            if let Some(new) = &change.new_image {
                line.push_str(",NewImage:");
                ion::item(&mut line, new);
            }
            line.push_str("}}");
            line
        }
    }
}

/// Why a line of a data file is not an item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LineError(pub String);

/// The item of a DynamoDB JSON line, `{"Item":{…}}` (as exports write it, and as DynamoDB's import
/// reads it).
pub fn json_item(line: &str) -> Result<Item, LineError> {
    let json: Json = serde_json::from_str(line).map_err(|e| LineError(format!("Invalid JSON: {e}")))?;
    match &json {
        Json::Object(fields) if fields.len() == 1 && fields.contains_key("Item") => {
            item_from_json(&fields["Item"]).map_err(|e| LineError(e.message))
        }
        _ => Err(LineError("Expected a line {\"Item\":{...}}".into())),
    }
}

/// The items of an Ion stream: each top-level value a struct `{Item:{…}}`; version markers between
/// them are skipped. A value that is not an item is an error in its place; a stream
/// that cannot be parsed ends with its error.
pub fn ion_items(input: impl Read + 'static) -> Result<impl Iterator<Item = Result<Item, LineError>>, LineError> {
    let reader = std::io::BufReader::new(input);
    let values = Element::iter(reader).map_err(|e| LineError(format!("Invalid Ion: {e}")))?;
    let mut failed = false;
    Ok(values.map_while(move |value| {
        // After a parse error the reader cannot find the next value: the stream ends there.
        if failed {
            return None;
        }
        let value = match value {
            Ok(value) => value,
            Err(e) => {
                failed = true;
                return Some(Err(LineError(format!("Invalid Ion: {e}"))));
            }
        };
        Some(ion_item_of(&value))
    }))
}

/// The item a top-level Ion value `{Item:{…}}` holds.
fn ion_item_of(value: &Element) -> Result<Item, LineError> {
    let expected = || LineError(format!("Expected an Ion struct {{Item:{{...}}}}, got {value}"));
    let fields = value.as_struct().ok_or_else(expected)?;
    let item = fields.get("Item").filter(|_| fields.len() == 1).ok_or_else(expected)?;
    let Some(attributes) = item.as_struct() else {
        return Err(LineError(format!("Expected an Ion struct, got {item}")));
    };
    attributes.fields().map(|(name, v)| Ok((field_name(name.text())?, attribute(v)?))).collect()
}

fn field_name(text: Option<&str>) -> Result<String, LineError> {
    text.map(str::to_string).ok_or_else(|| LineError("An Ion field name has no text".into()))
}

fn number(text: &str) -> Result<Number, LineError> {
    text.parse::<Number>().map_err(|e| LineError(e.to_string()))
}

/// An Ion value as an attribute value, by DynamoDB's mapping (read leniently: ints and symbols too).
fn attribute(value: &Element) -> Result<AttributeValue, LineError> {
    let set = |kind: &str| value.annotations().iter().any(|a| a.text() == Some(kind));
    Ok(match value.value() {
        Ion::Null(_) => AttributeValue::Null,
        Ion::Bool(b) => AttributeValue::Bool(*b),
        Ion::String(s) => AttributeValue::S(s.text().to_string()),
        Ion::Symbol(s) => AttributeValue::S(field_name(s.text())?),
        Ion::Int(i) => AttributeValue::N(number(&i.to_string())?),
        Ion::Decimal(d) => AttributeValue::N(decimal_number(d)?),
        Ion::Float(f) if f.is_finite() => AttributeValue::N(number(&f.to_string())?),
        Ion::Blob(b) | Ion::Clob(b) => AttributeValue::B(b.as_ref().to_vec()),
        Ion::List(values) | Ion::SExp(values) if set("$dynamodb_SS") => AttributeValue::Ss(
            values
                .iter()
                .map(|v| v.as_string().map(str::to_string).ok_or_else(|| LineError(format!("A string set holds {v}"))))
                .collect::<Result<_, _>>()?,
        ),
        Ion::List(values) | Ion::SExp(values) if set("$dynamodb_NS") => AttributeValue::Ns(
            values
                .iter()
                .map(|v| match attribute(v)? {
                    AttributeValue::N(n) => Ok(n),
                    _ => Err(LineError(format!("A number set holds {v}"))),
                })
                .collect::<Result<_, _>>()?,
        ),
        Ion::List(values) | Ion::SExp(values) if set("$dynamodb_BS") => AttributeValue::Bs(
            values
                .iter()
                .map(|v| v.as_lob().map(<[u8]>::to_vec).ok_or_else(|| LineError(format!("A binary set holds {v}"))))
                .collect::<Result<_, _>>()?,
        ),
        Ion::List(values) | Ion::SExp(values) => {
            AttributeValue::L(values.iter().map(attribute).collect::<Result<_, _>>()?)
        }
        Ion::Struct(fields) => AttributeValue::M(
            fields.fields().map(|(name, v)| Ok((field_name(name.text())?, attribute(v)?))).collect::<Result<_, _>>()?,
        ),
        _ => return Err(LineError(format!("DynamoDB has no type for the Ion value {value}"))),
    })
}

/// An Ion decimal as a number, exactly (DynamoDB's limits apply: 38 digits, its range).
fn decimal_number(d: &Decimal) -> Result<Number, LineError> {
    let coefficient = d.coefficient();
    let sign = if coefficient.sign() == ion_rs::decimal::Sign::Negative { "-" } else { "" };
    number(&format!("{sign}{}E{}", coefficient.magnitude(), d.exponent()))
}

/// Ion text as DynamoDB's exports write it: compact (`{Item:{Id:103.,PageCount:6d2}}`), numbers as
/// exact decimals (a coefficient and an exponent, never a float), binary as base64 blobs, sets as
/// lists annotated `$dynamodb_SS`, `$dynamodb_NS`, `$dynamodb_BS`. (Reading is `ion-rs`'s.)
mod ion {
    use base64::engine::general_purpose::STANDARD as BASE64;
    use base64::Engine;
    use tern_proto::{AttributeValue, Item, Number};

    /// Appends an item as an Ion struct.
    pub fn item(out: &mut String, item: &Item) {
        out.push('{');
        for (n, (name, value)) in item.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            symbol(out, name);
            out.push(':');
            self::value(out, value);
        }
        out.push('}');
    }

    fn value(out: &mut String, value: &AttributeValue) {
        match value {
            AttributeValue::S(s) => text(out, s, '"'),
            AttributeValue::N(n) => decimal(out, n),
            AttributeValue::B(b) => blob(out, b),
            AttributeValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            AttributeValue::Null => out.push_str("null"),
            AttributeValue::L(values) => list(out, "", values, value_of),
            AttributeValue::M(fields) => item(out, fields),
            AttributeValue::Ss(values) => list(out, "$dynamodb_SS::", values, |out, s| text(out, s, '"')),
            AttributeValue::Ns(values) => list(out, "$dynamodb_NS::", values, decimal),
            AttributeValue::Bs(values) => list(out, "$dynamodb_BS::", values, |out, b| blob(out, b)),
        }
    }

    fn value_of(out: &mut String, v: &AttributeValue) {
        value(out, v);
    }

    fn list<T>(out: &mut String, annotation: &str, values: &[T], write: impl Fn(&mut String, &T)) {
        out.push_str(annotation);
        out.push('[');
        for (n, v) in values.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            write(out, v);
        }
        out.push(']');
    }

    fn blob(out: &mut String, bytes: &[u8]) {
        out.push_str("{{");
        out.push_str(&BASE64.encode(bytes));
        out.push_str("}}");
    }

    /// A number's digits as the coefficient: `103.`, `6d2`, `12.5`, `0.000123`, `1d-130`.
    pub fn decimal(out: &mut String, number: &Number) {
        if number.is_zero() {
            out.push_str("0.");
            return;
        }
        if number.is_negative() {
            out.push('-');
        }
        let digits: String = number.digits().iter().map(|d| char::from(b'0' + d)).collect();
        let point = number.exponent();
        let exponent = point - digits.len() as i32;
        if exponent == 0 {
            out.push_str(&digits);
            out.push('.');
        } else if exponent > 0 || point <= -6 {
            out.push_str(&format!("{digits}d{exponent}"));
        } else if point > 0 {
            let (whole, fraction) = digits.split_at(point as usize);
            out.push_str(&format!("{whole}.{fraction}"));
        } else {
            out.push_str(&format!("0.{}{digits}", "0".repeat((-point) as usize)));
        }
    }

    /// A field name: bare when it is an identifier Ion does not reserve, else quoted.
    fn symbol(out: &mut String, name: &str) {
        let mut bytes = name.bytes();
        let identifier = bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
            && !matches!(name, "null" | "true" | "false" | "nan");
        match identifier {
            true => out.push_str(name),
            false => text(out, name, '\''),
        }
    }

    /// A string (`"`) or quoted symbol (`'`), escaped.
    fn text(out: &mut String, text: &str, quote: char) {
        out.push(quote);
        for c in text.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c == quote => {
                    out.push('\\');
                    out.push(c);
                }
                c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push(quote);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> AttributeValue {
        AttributeValue::N(text.parse().unwrap())
    }

    fn every_type() -> Item {
        let mut nested = Item::new();
        nested.insert("deep".into(), AttributeValue::L(vec![n("1"), AttributeValue::Null]));
        [
            ("pk", AttributeValue::S("a \"quoted\"\nline".into())),
            ("big", n("99999999999999999999999999999999999999")),
            ("tiny", n("-1E-130")),
            ("huge", n("9.9999999999999999999999999999999999999E+125")),
            ("frac", n("0.000123")),
            ("zero", n("0")),
            ("bin", AttributeValue::B(vec![0, 1, 2, 255])),
            ("yes", AttributeValue::Bool(true)),
            ("nothing", AttributeValue::Null),
            ("list", AttributeValue::L(vec![AttributeValue::S("x".into()), AttributeValue::M(nested.clone())])),
            ("map", AttributeValue::M(nested)),
            ("ss", AttributeValue::Ss(vec!["a".into(), "b".into()])),
            ("ns", AttributeValue::Ns(vec!["1.5".parse().unwrap(), "-2".parse().unwrap()])),
            ("bs", AttributeValue::Bs(vec![vec![1], vec![2, 3]])),
            ("odd name-with.chars", AttributeValue::S(String::new())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    #[test]
    fn every_type_round_trips_through_both_formats() {
        let item = every_type();
        let json = item_line(Format::DynamoDbJson, &item);
        assert!(json.starts_with("{\"Item\":{"), "{json}");
        assert!(!json.contains('\n'));
        assert_eq!(json_item(&json).unwrap(), item);

        let ion = item_line(Format::Ion, &item);
        assert!(ion.starts_with("$ion_1_0 {Item:{"), "{ion}");
        assert!(!ion.contains('\n'), "{ion}");
        let read: Vec<Item> =
            ion_items(std::io::Cursor::new(ion.clone().into_bytes())).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(read, vec![item]);
    }

    #[test]
    fn ion_numbers_are_exact_decimals_and_sets_are_annotated_lists() {
        let item: Item = [("n", n("12.5")), ("ss", AttributeValue::Ss(vec!["x".into()]))]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let line = item_line(Format::Ion, &item);
        assert_eq!(line, r#"$ion_1_0 {Item:{n:12.5,ss:$dynamodb_SS::["x"]}}"#);
        let decimal = |text: &str| {
            let mut out = String::new();
            ion::decimal(&mut out, &text.parse().unwrap());
            out
        };
        assert_eq!(decimal("103"), "103.");
        assert_eq!(decimal("600"), "6d2");
        assert_eq!(decimal("-0.000123"), "-0.000123");
        assert_eq!(decimal("1E-130"), "1d-130");
        assert_eq!(decimal("0"), "0.");
        assert_eq!(decimal("9.9999999999999999999999999999999999999E+125"), format!("{}d88", "9".repeat(38)));
    }

    #[test]
    fn the_documentation_s_ion_example_line_reads() {
        // DynamoDB's developer guide, "DynamoDB table export output format", Ion example.
        let line = r#"$ion_1_0 {Item:{Authors:$dynamodb_SS::["Author1","Author2"],Dimensions:"8.5 x 11.0 x 1.5",ISBN:"333-3333333333",Id:103.,InPublication:false,PageCount:6d2,Price:2d3,ProductCategory:"Book",Title:"Book 103 Title"}}"#;
        let items: Vec<Item> =
            ion_items(std::io::Cursor::new(line.as_bytes().to_vec())).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["Id"], n("103"));
        assert_eq!(items[0]["PageCount"], n("600"));
        assert_eq!(items[0]["Price"], n("2000"));
        assert_eq!(items[0]["Authors"], AttributeValue::Ss(vec!["Author1".into(), "Author2".into()]));
        assert_eq!(items[0]["InPublication"], AttributeValue::Bool(false));
    }

    #[test]
    fn the_documentation_s_json_example_line_reads() {
        let line = r#"{"Item":{"Authors":{"SS":["Author1","Author2"]},"Dimensions":{"S":"8.5 x 11.0 x 1.5"},"ISBN":{"S":"333-3333333333"},"Id":{"N":"103"},"InPublication":{"BOOL":false},"PageCount":{"N":"600"},"Price":{"N":"2000"},"ProductCategory":{"S":"Book"},"Title":{"S":"Book 103 Title"}}}"#;
        let item = json_item(line).unwrap();
        assert_eq!(item["Price"], n("2000"));
        assert_eq!(item.len(), 9);
    }

    #[test]
    fn incremental_lines_hold_the_images_given() {
        let keys: Item = [("pk".to_string(), AttributeValue::S("k".into()))].into_iter().collect();
        let mut new = keys.clone();
        new.insert("v".into(), n("2"));
        let change = Change {
            keys: keys.clone(),
            new_image: Some(new.clone()),
            old_image: None,
            write_timestamp_micros: 1_684_374_845_117_899,
        };
        let json: Json = serde_json::from_str(&change_line(Format::DynamoDbJson, &change)).unwrap();
        assert_eq!(
            json,
            json!({"Metadata":{"WriteTimestampMicros":{"N":"1684374845117899"}},"Keys":{"pk":{"S":"k"}},"NewImage":{"pk":{"S":"k"},"v":{"N":"2"}}})
        );
        let ion = change_line(Format::Ion, &Change { old_image: Some(keys), ..change });
        assert_eq!(
            ion,
            r#"$ion_1_0 {Record:{Keys:{pk:"k"},Metadata:{WriteTimestampMicros:1684374845117899.},OldImage:{pk:"k"},NewImage:{pk:"k",v:2.}}}"#
        );
    }

    #[test]
    fn bad_lines_say_why() {
        assert!(json_item("{\"Item\":{\"pk\":{\"S\":\"a\"}").unwrap_err().0.starts_with("Invalid JSON"));
        assert!(json_item("{\"Item\":{\"n\":{\"N\":\"1e500\"}}}").unwrap_err().0.contains("overflow"));
        assert_eq!(json_item("{\"pk\":{\"S\":\"a\"}}").unwrap_err().0, "Expected a line {\"Item\":{...}}");
        let broken = ion_items(std::io::Cursor::new(b"$ion_1_0 {Item:{pk:\"a\"}} {Item:".to_vec())).unwrap();
        let results: Vec<_> = broken.collect();
        assert_eq!(results.len(), 2, "{results:?}");
        assert!(results[0].is_ok());
        assert!(results[1].as_ref().unwrap_err().0.starts_with("Invalid Ion"));
    }
}
