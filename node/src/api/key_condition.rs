//! KeyConditionExpression: the partition key's equality and at most one sort key condition, parsed
//! with the expression language and turned into one range of storage keys.

use tern_proto::v1::attribute_value::Value as Wire;
use tern_proto::v1::AttributeValue;
use tern_proto::ApiError;

use crate::keyspace::item_key;
use crate::keyspace::key_after;
use crate::keyspace::prefix_end;
use crate::reader::KeyRange;
use crate::schema::{check_key_value, TableSchema, MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES};
use tern_expression::ast::{Comparator, Condition, Function, Operand, Path};
use tern_expression::{ExpressionKind, Placeholders, Segment};

/// The condition on the sort key.
#[derive(Debug, Clone, PartialEq)]
pub enum SortCondition {
    Compare(Comparator, AttributeValue),
    Between(AttributeValue, AttributeValue),
    BeginsWith(AttributeValue),
}

/// A key condition, checked against the table's key schema.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyCondition {
    pub partition_value: AttributeValue,
    pub sort: Option<SortCondition>,
}

fn invalid(why: impl std::fmt::Display) -> ApiError {
    ExpressionKind::KeyCondition.invalid(why)
}

fn unsupported() -> ApiError {
    ApiError::validation("Query key condition not supported")
}

/// The conjuncts of a condition; only AND may join them.
fn conjuncts<'c>(condition: &'c Condition, out: &mut Vec<&'c Condition>) -> Result<(), ApiError> {
    match condition {
        Condition::Parenthesized(inner) => conjuncts(inner, out),
        Condition::And(a, b) => {
            conjuncts(a, out)?;
            conjuncts(b, out)
        }
        Condition::Or(..) => Err(invalid("Invalid operator used in KeyConditionExpression: OR")),
        Condition::Not(..) => Err(invalid("Invalid operator used in KeyConditionExpression: NOT")),
        other => {
            out.push(other);
            Ok(())
        }
    }
}

fn attribute(ctx: &Placeholders, path: &Path) -> Result<String, ApiError> {
    match ctx.resolve(path).as_slice() {
        [Segment::Key(name)] => Ok(name.clone()),
        _ => Err(invalid("Key condition must reference top-level key attributes")),
    }
}

fn value(ctx: &Placeholders, operand: &Operand) -> Result<AttributeValue, ApiError> {
    match operand {
        Operand::Value(placeholder) => Ok(ctx.value(placeholder)?.to_wire()),
        _ => Err(unsupported()),
    }
}

fn mismatch() -> ApiError {
    ApiError::validation(
        "One or more parameter values were invalid: Condition parameter type does not match schema type",
    )
}

/// Matches a parsed (and placeholder-checked) condition to the table's key schema.
pub fn from_condition(
    ctx: &Placeholders,
    condition: &Condition,
    schema: &TableSchema,
) -> Result<KeyCondition, ApiError> {
    let mut terms = Vec::new();
    conjuncts(condition, &mut terms)?;
    if terms.len() > 2 {
        return Err(invalid("The expression has too many conditions on key attributes"));
    }
    let pk = &schema.partition_key;
    let mut partition_value = None;
    let mut sort = None;
    for term in terms {
        let (name, term_sort) = match term {
            Condition::Compare(Operand::Path(p), comparator, v) => {
                (attribute(ctx, p)?, SortCondition::Compare(*comparator, value(ctx, v)?))
            }
            Condition::Between(Operand::Path(p), low, high) => {
                (attribute(ctx, p)?, SortCondition::Between(value(ctx, low)?, value(ctx, high)?))
            }
            Condition::Function(Function::BeginsWith(p, prefix)) => {
                (attribute(ctx, p)?, SortCondition::BeginsWith(value(ctx, prefix)?))
            }
            _ => return Err(unsupported()),
        };
        if name == pk.name {
            match term_sort {
                SortCondition::Compare(Comparator::Eq, v) if partition_value.is_none() => partition_value = Some(v),
                _ => return Err(unsupported()),
            }
            continue;
        }
        let Some(sk) = schema.sort_key.as_ref().filter(|sk| sk.name == name) else {
            return Err(ApiError::validation(format!(
                "Query condition missed key schema element: {}",
                match (&schema.sort_key, &partition_value) {
                    (Some(sk), Some(_)) => sk.name.as_str(),
                    _ => pk.name.as_str(),
                }
            )));
        };
        if sort.is_some() {
            return Err(unsupported());
        }
        let typed = |v: &AttributeValue| check_key_value(sk, v, MAX_SORT_KEY_BYTES).map_err(|_| mismatch());
        match &term_sort {
            SortCondition::Compare(Comparator::Ne, _) => return Err(unsupported()),
            SortCondition::Compare(_, v) => typed(v)?,
            SortCondition::Between(low, high) => {
                typed(low)?;
                typed(high)?;
            }
            SortCondition::BeginsWith(prefix) => {
                if sk.attribute_type == "N" {
                    return Err(invalid("Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"));
                }
                let empty = matches!(&prefix.value, Some(Wire::S(s)) if s.is_empty())
                    || matches!(&prefix.value, Some(Wire::B(b)) if b.is_empty());
                if !empty {
                    typed(prefix)?;
                }
            }
        }
        sort = Some(term_sort);
    }
    let partition_value = partition_value
        .ok_or_else(|| ApiError::validation(format!("Query condition missed key schema element: {}", pk.name)))?;
    check_key_value(pk, &partition_value, MAX_PARTITION_KEY_BYTES).map_err(|e| {
        if e.message.contains("Type mismatch") {
            mismatch()
        } else {
            e
        }
    })?;
    Ok(KeyCondition { partition_value, sort })
}

impl KeyCondition {
    /// The storage keys the condition selects, as one range.
    pub fn range(&self, schema: &TableSchema) -> Result<KeyRange, ApiError> {
        let prefix = schema.partition_prefix(&self.partition_value)?;
        let at = |value: &AttributeValue| -> Result<Vec<u8>, ApiError> {
            let mut key = prefix.clone();
            item_key::encode_key_value(&mut key, value)?;
            Ok(key)
        };
        let everything = KeyRange { lower: prefix.clone(), upper: prefix_end(&prefix) };
        Ok(match &self.sort {
            None => everything,
            Some(SortCondition::Compare(comparator, value)) => {
                let key = at(value)?;
                match comparator {
                    Comparator::Eq => KeyRange { upper: key_after(&key), lower: key },
                    Comparator::Lt => KeyRange { upper: key, ..everything },
                    Comparator::Le => KeyRange { upper: key_after(&key), ..everything },
                    Comparator::Gt => KeyRange { lower: key_after(&key), ..everything },
                    Comparator::Ge => KeyRange { lower: key, ..everything },
                    Comparator::Ne => return Err(unsupported()),
                }
            }
            Some(SortCondition::Between(low, high)) => KeyRange { lower: at(low)?, upper: key_after(&at(high)?) },
            Some(SortCondition::BeginsWith(value)) => {
                let mut start = prefix.clone();
                match &value.value {
                    Some(Wire::S(s)) => item_key::encode_bytes(&mut start, s.as_bytes(), false),
                    Some(Wire::B(b)) => item_key::encode_bytes(&mut start, b, false),
                    _ => return Err(unsupported()),
                }
                KeyRange { upper: prefix_end(&start), lower: start }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::KeyAttribute;
    use std::collections::BTreeMap;
    use tern_expression::ExpressionSet;
    use tern_proto::value::AttributeValue as Domain;

    fn schema() -> TableSchema {
        TableSchema {
            table_id: 1,
            partition_key: KeyAttribute { name: "pk".into(), attribute_type: "S".into() },
            sort_key: Some(KeyAttribute { name: "sk".into(), attribute_type: "N".into() }),
        }
    }

    fn s(v: &str) -> Domain {
        Domain::S(v.into())
    }

    fn n(v: &str) -> Domain {
        Domain::N(v.parse().unwrap())
    }

    fn parse_with(
        expression: &str,
        names: &[(&str, &str)],
        values: &[(&str, Domain)],
    ) -> Result<KeyCondition, ApiError> {
        let names: BTreeMap<String, String> = names.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let values: BTreeMap<String, Domain> = values.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let mut set = ExpressionSet::new(&names, &values);
        let condition = set.condition(ExpressionKind::KeyCondition, expression)?;
        set.finish()?;
        from_condition(&Placeholders { names: &names, values: &values }, &condition, &schema())
    }

    #[test]
    fn parses_every_sort_key_form() {
        let cases = [
            ("pk = :p AND sk < :a", SortCondition::Compare(Comparator::Lt, n("1").to_wire())),
            ("pk = :p and sk >= :a", SortCondition::Compare(Comparator::Ge, n("1").to_wire())),
            ("(sk <= :a) AND (pk = :p)", SortCondition::Compare(Comparator::Le, n("1").to_wire())),
            ("pk = :p AND sk BETWEEN :a AND :b", SortCondition::Between(n("1").to_wire(), n("2").to_wire())),
        ];
        for (expression, expected) in cases {
            let mut values = vec![(":p", s("x")), (":a", n("1"))];
            if expression.contains(":b") {
                values.push((":b", n("2")));
            }
            let parsed = parse_with(expression, &[], &values).unwrap();
            assert_eq!(
                parsed,
                KeyCondition { partition_value: s("x").to_wire(), sort: Some(expected) },
                "{expression}"
            );
        }
        let by_name = parse_with("#k = :p", &[("#k", "pk")], &[(":p", s("x"))]).unwrap();
        assert_eq!(by_name, KeyCondition { partition_value: s("x").to_wire(), sort: None });
    }

    #[test]
    fn rejects_what_dynamodb_rejects() {
        let error = |e: &str, v: &[(&str, Domain)]| parse_with(e, &[], v).unwrap_err().message;
        assert_eq!(error("sk = :a", &[(":a", n("1"))]), "Query condition missed key schema element: pk");
        assert_eq!(
            error("pk = :p", &[(":p", n("1"))]),
            "One or more parameter values were invalid: Condition parameter type does not match schema type"
        );
        assert_eq!(
            error("pk = :p", &[(":p", s("x")), (":q", s("y"))]),
            "Value provided in ExpressionAttributeValues unused in expressions: keys: {:q}"
        );
        assert_eq!(error("pk = :p", &[]), "Invalid KeyConditionExpression: An expression attribute value used in expression is not defined; attribute value: :p");
        assert_eq!(error("pk < :p", &[(":p", s("x"))]), "Query key condition not supported");
        assert_eq!(
            error("pk = :p OR sk = :a", &[(":p", s("x")), (":a", n("1"))]),
            "Invalid KeyConditionExpression: Invalid operator used in KeyConditionExpression: OR"
        );
        assert_eq!(
            error("pk = :p AND begins_with(sk, :a)", &[(":p", s("x")), (":a", s("1"))]),
            "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"
        );
        assert!(error("pk = :p AND sk BETWEEN :b AND :a", &[(":p", s("x")), (":a", n("1")), (":b", n("2"))])
            .contains("BETWEEN operator requires upper bound"));
        assert!(error("pk = = :p", &[(":p", s("x"))]).starts_with("Invalid KeyConditionExpression: Syntax error"));
        assert_eq!(
            error("name = :p", &[(":p", s("x"))]),
            "Invalid KeyConditionExpression: Attribute name is a reserved keyword; reserved keyword: name"
        );
    }
}
