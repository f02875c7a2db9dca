//! The order-preserving key encoding: an item's storage key is
//! `table id ‖ partition bucket ‖ partition key ‖ sort key`, each key value encoded so that bytewise
//! order is DynamoDB's order (numbers numerically, strings and binary bytewise). A Query is then one
//! RocksDB range scan. The bucket, a 16-bit hash of the partition key, spreads partitions evenly over
//! the key space, as DynamoDB's hash does: a Scan reads partitions in hash order, and a parallel
//! Scan's segments are contiguous ranges of buckets.

use tern_proto::number::{Number, MIN_EXPONENT};
use tern_proto::v1::attribute_value::Value as Wire;
use tern_proto::v1::AttributeValue;
use tern_proto::ApiError;

use super::{table_end, table_prefix};

const NEGATIVE: u8 = 0x01;
const ZERO: u8 = 0x02;
const POSITIVE: u8 = 0x03;

/// Number of partition buckets.
pub const BUCKETS: u32 = 1 << 16;

/// The bucket of an encoded partition key (xxh3, stable across platforms and versions).
pub fn partition_bucket(encoded_partition_key: &[u8]) -> u16 {
    (xxhash_rust::xxh3::xxh3_64(encoded_partition_key) >> 48) as u16
}

/// The first storage key of the buckets from `bucket` on.
pub fn bucket_start(table_id: u64, bucket: u32) -> Vec<u8> {
    if bucket >= BUCKETS {
        return table_end(table_id);
    }
    let mut key = table_prefix(table_id);
    key.extend_from_slice(&(bucket as u16).to_be_bytes());
    key
}

/// The prefix of every storage key in one partition: table id, bucket, partition key.
pub fn partition_prefix(table_id: u64, partition_value: &AttributeValue) -> Result<Vec<u8>, ApiError> {
    let mut encoded = Vec::new();
    encode_key_value(&mut encoded, partition_value)?;
    let mut prefix = table_prefix(table_id);
    prefix.extend_from_slice(&partition_bucket(&encoded).to_be_bytes());
    prefix.extend_from_slice(&encoded);
    Ok(prefix)
}

/// The key values a storage key holds, given the types of the partition key and the sort key.
pub fn decode_storage_key(
    key: &[u8],
    partition_type: &str,
    sort_type: Option<&str>,
) -> Option<(AttributeValue, Option<AttributeValue>)> {
    let (partition, rest) = decode_key_value(key.get(10..)?, partition_type)?;
    let sort = match sort_type {
        Some(sort_type) => Some(decode_key_value(rest, sort_type)?.0),
        None => None,
    };
    Some((partition, sort))
}

/// Appends one key value (S, N or B) in its order-preserving, self-delimiting form.
pub fn encode_key_value(out: &mut Vec<u8>, value: &AttributeValue) -> Result<(), ApiError> {
    match &value.value {
        Some(Wire::S(s)) => encode_bytes(out, s.as_bytes(), true),
        Some(Wire::B(b)) => encode_bytes(out, b, true),
        Some(Wire::N(n)) => {
            let number: Number =
                n.parse().map_err(|e: tern_proto::number::NumberError| ApiError::validation(e.to_string()))?;
            encode_number(out, &number);
        }
        _ => return Err(ApiError::validation("Key attributes must be of type S, N or B")),
    }
    Ok(())
}

/// Appends a string or binary value: `0x00` escaped as `0x00 0xFF`, closed by `0x00 0x01`, so a shorter
/// value sorts before every longer value it is a prefix of. Without the terminator (`close = false`) the
/// result is a prefix of the encoding of every value that begins with `bytes` (for `begins_with`).
pub fn encode_bytes(out: &mut Vec<u8>, bytes: &[u8], close: bool) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    if close {
        out.extend_from_slice(&[0x00, 0x01]);
    }
}

/// Appends a number: a sign class, then for non-zero numbers the exponent and the digits, closed by
/// a terminator below every digit; negative numbers have those bytes inverted so larger magnitudes sort first.
pub fn encode_number(out: &mut Vec<u8>, number: &Number) {
    if number.is_zero() {
        out.push(ZERO);
        return;
    }
    let start = out.len();
    let exponent = (number.exponent() - MIN_EXPONENT) as u16;
    out.extend_from_slice(&exponent.to_be_bytes());
    out.extend(number.digits().iter().map(|d| b'0' + d));
    out.push(0x00);
    if number.is_negative() {
        for byte in &mut out[start..] {
            *byte = !*byte;
        }
        out.insert(start, NEGATIVE);
    } else {
        out.insert(start, POSITIVE);
    }
}

/// Decodes one key value written by [`encode_key_value`], given its type; returns it and the rest.
pub fn decode_key_value<'a>(bytes: &'a [u8], attribute_type: &str) -> Option<(AttributeValue, &'a [u8])> {
    let value = |v| AttributeValue { value: Some(v) };
    match attribute_type {
        "S" | "B" => {
            let mut raw = Vec::new();
            let mut i = 0;
            loop {
                match (bytes.get(i)?, bytes.get(i + 1)) {
                    (0x00, Some(0xFF)) => {
                        raw.push(0);
                        i += 2;
                    }
                    (0x00, Some(0x01)) => break,
                    (0x00, _) => return None,
                    (&b, _) => {
                        raw.push(b);
                        i += 1;
                    }
                }
            }
            let rest = &bytes[i + 2..];
            if attribute_type == "S" {
                Some((value(Wire::S(String::from_utf8(raw).ok()?)), rest))
            } else {
                Some((value(Wire::B(raw)), rest))
            }
        }
        "N" => {
            let (&class, body) = bytes.split_first()?;
            if class == ZERO {
                return Some((value(Wire::N("0".into())), body));
            }
            let negative = class == NEGATIVE;
            let byte = |b: u8| if negative { !b } else { b };
            let exponent = u16::from_be_bytes([byte(*body.first()?), byte(*body.get(1)?)]) as i32 + MIN_EXPONENT;
            let mut digits = String::new();
            let mut i = 2;
            loop {
                let b = byte(*body.get(i)?);
                i += 1;
                if b == 0 {
                    break;
                }
                digits.push(b as char);
            }
            let text = format!("{}0.{}E{}", if negative { "-" } else { "" }, digits, exponent);
            let number: Number = text.parse().ok()?;
            Some((value(Wire::N(number.to_string())), &body[i..]))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encoded(value: Wire) -> Vec<u8> {
        let mut out = Vec::new();
        encode_key_value(&mut out, &AttributeValue { value: Some(value) }).unwrap();
        out
    }

    fn number(text: &str) -> Vec<u8> {
        encoded(Wire::N(text.into()))
    }

    #[test]
    fn key_after_is_the_next_key() {
        let key = vec![5, 6];
        assert!(crate::keyspace::key_after(&key) > key);
        assert!(crate::keyspace::key_after(&key) <= vec![5, 6, 0]);
    }

    #[test]
    fn numbers_sort_numerically() {
        let sorted = [
            "-1E+125", "-100", "-99.5", "-10", "-1", "-0.5", "-1E-130", "0", "1E-130", "0.5", "1", "1.01", "1.1", "10",
            "99.5", "100", "9.9E+125",
        ];
        for pair in sorted.windows(2) {
            assert!(number(pair[0]) < number(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(number("1.0"), number("1"));
    }

    #[test]
    fn strings_sort_bytewise_and_prefixes_first() {
        let sorted = ["", "\0", "\0\0", "\0a", "a", "a\0", "a\0b", "ab", "b", "é"];
        for pair in sorted.windows(2) {
            assert!(
                encoded(Wire::S(pair[0].into())) < encoded(Wire::S(pair[1].into())),
                "{:?} < {:?}",
                pair[0],
                pair[1]
            );
        }
    }

    #[test]
    fn an_open_prefix_is_a_prefix_of_every_value_beginning_with_it() {
        let mut prefix = Vec::new();
        encode_bytes(&mut prefix, b"ab\0", false);
        for value in ["ab\0", "ab\0c", "ab\0\0"] {
            assert!(encoded(Wire::S(value.into())).starts_with(&prefix), "{value:?}");
        }
        assert!(!encoded(Wire::S("ab".into())).starts_with(&prefix));
    }

    fn decimal() -> impl Strategy<Value = String> {
        (any::<bool>(), "[0-9]{1,20}", "[0-9]{0,18}", -100i32..100).prop_map(|(neg, int, frac, exp)| {
            format!("{}{}.{}E{}", if neg { "-" } else { "" }, int, if frac.is_empty() { "0".into() } else { frac }, exp)
        })
    }

    proptest! {
        #[test]
        fn number_encoding_preserves_order(a in decimal(), b in decimal()) {
            let (na, nb): (Number, Number) = (a.parse().unwrap(), b.parse().unwrap());
            prop_assert_eq!(number(&a).cmp(&number(&b)), na.cmp(&nb));
        }

        #[test]
        fn string_encoding_preserves_order(a in ".{0,12}", b in ".{0,12}") {
            prop_assert_eq!(encoded(Wire::S(a.clone())).cmp(&encoded(Wire::S(b.clone()))), a.as_bytes().cmp(b.as_bytes()));
        }

        #[test]
        fn binary_encoding_preserves_order(a in proptest::collection::vec(any::<u8>(), 0..12), b in proptest::collection::vec(any::<u8>(), 0..12)) {
            prop_assert_eq!(encoded(Wire::B(a.clone())).cmp(&encoded(Wire::B(b.clone()))), a.cmp(&b));
        }

        #[test]
        fn encoded_values_decode_back(a in decimal(), s in ".{0,12}", b in proptest::collection::vec(any::<u8>(), 0..12)) {
            let canonical = a.parse::<Number>().unwrap().to_string();
            let mut bytes = number(&a);
            bytes.extend(encoded(Wire::S(s.clone())));
            bytes.extend(encoded(Wire::B(b.clone())));
            let (n, rest) = decode_key_value(&bytes, "N").unwrap();
            let (sv, rest) = decode_key_value(rest, "S").unwrap();
            let (bv, rest) = decode_key_value(rest, "B").unwrap();
            prop_assert_eq!(n.value, Some(Wire::N(canonical)));
            prop_assert_eq!(sv.value, Some(Wire::S(s)));
            prop_assert_eq!(bv.value, Some(Wire::B(b)));
            prop_assert!(rest.is_empty());
        }
    }
}
