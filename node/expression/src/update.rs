//! Applying an UpdateExpression to an item: every SET value is computed from the item as it was,
//! then SET, REMOVE, ADD and DELETE are applied.

use std::str::FromStr;

use bigdecimal::BigDecimal;
use tern_proto::value::{AttributeValue, Item};
use tern_proto::ApiError;

use super::ast::{Operand, Update};
use super::condition::number;
use super::document::{self, conflicting, describe, get, overlapping, DocumentPath, Placeholders, Segment};
use super::parse::ExpressionKind;

fn wrong_type() -> ApiError {
    ApiError::validation("An operand in the update expression has an incorrect data type")
}

fn decimal(value: &AttributeValue) -> Result<BigDecimal, ApiError> {
    match value {
        AttributeValue::N(n) => BigDecimal::from_str(&n.to_string()).map_err(|e| ApiError::internal(e.to_string())),
        _ => Err(wrong_type()),
    }
}

fn from_decimal(value: BigDecimal) -> Result<AttributeValue, ApiError> {
    Ok(AttributeValue::N(number(&value.normalized().to_string())?))
}

/// The value of a SET action's right-hand side, read from the item before the update.
fn set_value(ctx: &Placeholders, op: &Operand, old: &Item) -> Result<AttributeValue, ApiError> {
    Ok(match op {
        Operand::Path(path) => get(old, &ctx.resolve(path)).cloned().ok_or_else(|| {
            ApiError::validation("The provided expression refers to an attribute that does not exist in the item")
        })?,
        Operand::Value(placeholder) => ctx.value(placeholder)?.clone(),
        Operand::IfNotExists(path, fallback) => match get(old, &ctx.resolve(path)) {
            Some(value) => value.clone(),
            None => set_value(ctx, fallback, old)?,
        },
        Operand::ListAppend(a, b) => match (set_value(ctx, a, old)?, set_value(ctx, b, old)?) {
            (AttributeValue::L(mut a), AttributeValue::L(b)) => {
                a.extend(b);
                AttributeValue::L(a)
            }
            (a, b) => {
                let bad = if matches!(a, AttributeValue::L(_)) { b } else { a };
                return Err(ExpressionKind::Update.invalid(format!(
                    "Incorrect operand type for operator or function; operator or function: list_append, operand type: {}",
                    bad.type_name()
                )));
            }
        },
        Operand::Plus(a, b) => from_decimal(decimal(&set_value(ctx, a, old)?)? + decimal(&set_value(ctx, b, old)?)?)?,
        Operand::Minus(a, b) => from_decimal(decimal(&set_value(ctx, a, old)?)? - decimal(&set_value(ctx, b, old)?)?)?,
        Operand::Size(_) => {
            return Err(
                ExpressionKind::Update.invalid("The function is not allowed in an update expression; function: size")
            )
        }
    })
}

fn union<T: PartialEq + Clone>(mut a: Vec<T>, b: &[T]) -> Vec<T> {
    for v in b {
        if !a.contains(v) {
            a.push(v.clone());
        }
    }
    a
}

fn difference<T: PartialEq>(a: Vec<T>, b: &[T]) -> Vec<T> {
    a.into_iter().filter(|v| !b.contains(v)).collect()
}

/// The paths an update touches, resolved; in the order SET, REMOVE, ADD, DELETE.
pub fn updated_paths(ctx: &Placeholders, update: &Update) -> Vec<DocumentPath> {
    let set = update.set.iter().map(|(p, _)| p);
    let add = update.add.iter().map(|(p, _)| p);
    let delete = update.delete.iter().map(|(p, _)| p);
    set.chain(update.remove.iter()).chain(add).chain(delete).map(|p| ctx.resolve(p)).collect()
}

/// Checks an update against the table's key and itself: no key attribute, no overlapping paths.
pub fn check(ctx: &Placeholders, update: &Update, key_names: &[&str]) -> Result<(), ApiError> {
    let paths = updated_paths(ctx, update);
    for path in &paths {
        if let Some(Segment::Key(first)) = path.first() {
            if key_names.contains(&first.as_str()) {
                return Err(ApiError::validation(format!(
                    "One or more parameter values were invalid: Cannot update attribute {first}. This attribute is part of the key"
                )));
            }
        }
    }
    let refs: Vec<&DocumentPath> = paths.iter().collect();
    for (why, pair) in [("overlap", overlapping(&refs)), ("conflict", conflicting(&refs))] {
        if let Some((a, b)) = pair {
            return Err(ExpressionKind::Update.invalid(format!(
                "Two document paths {why} with each other; must remove or rewrite one of these paths; path one: {}, path two: {}",
                describe(a),
                describe(b)
            )));
        }
    }
    Ok(())
}

/// Applies the update to `item` in place.
pub fn apply(ctx: &Placeholders, update: &Update, item: &mut Item) -> Result<(), ApiError> {
    let old = item.clone();
    let values = update
        .set
        .iter()
        .map(|(path, op)| Ok((ctx.resolve(path), set_value(ctx, op, &old)?)))
        .collect::<Result<Vec<_>, ApiError>>()?;
    for (path, value) in values {
        document::set(item, &path, value)?;
    }
    // List elements go from the highest index down, so that each index means the list as it was.
    let mut removals: Vec<DocumentPath> = update.remove.iter().map(|p| ctx.resolve(p)).collect();
    removals.sort_by(|a, b| b.cmp(a));
    for path in removals {
        document::remove(item, &path)?;
    }
    for (path, op) in &update.add {
        let path = ctx.resolve(path);
        let Operand::Value(placeholder) = op else { return Err(wrong_type()) };
        let added = ctx.value(placeholder)?;
        let new = match (get(item, &path), added) {
            (None, AttributeValue::N(_) | AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_)) => {
                added.clone()
            }
            (Some(current @ AttributeValue::N(_)), AttributeValue::N(_)) => {
                from_decimal(decimal(current)? + decimal(added)?)?
            }
            (Some(AttributeValue::Ss(a)), AttributeValue::Ss(b)) => AttributeValue::Ss(union(a.clone(), b)),
            (Some(AttributeValue::Ns(a)), AttributeValue::Ns(b)) => AttributeValue::Ns(union(a.clone(), b)),
            (Some(AttributeValue::Bs(a)), AttributeValue::Bs(b)) => AttributeValue::Bs(union(a.clone(), b)),
            _ => return Err(wrong_type()),
        };
        document::set(item, &path, new)?;
    }
    for (path, op) in &update.delete {
        let path = ctx.resolve(path);
        let Operand::Value(placeholder) = op else { return Err(wrong_type()) };
        let removed = ctx.value(placeholder)?;
        let new = match (get(item, &path), removed) {
            (None, AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_)) => continue,
            (Some(AttributeValue::Ss(a)), AttributeValue::Ss(b)) => Some(AttributeValue::Ss(difference(a.clone(), b)))
                .filter(|v| !matches!(v, AttributeValue::Ss(s) if s.is_empty())),
            (Some(AttributeValue::Ns(a)), AttributeValue::Ns(b)) => Some(AttributeValue::Ns(difference(a.clone(), b)))
                .filter(|v| !matches!(v, AttributeValue::Ns(s) if s.is_empty())),
            (Some(AttributeValue::Bs(a)), AttributeValue::Bs(b)) => Some(AttributeValue::Bs(difference(a.clone(), b)))
                .filter(|v| !matches!(v, AttributeValue::Bs(s) if s.is_empty())),
            _ => return Err(wrong_type()),
        };
        match new {
            Some(value) => document::set(item, &path, value)?,
            // A set left empty is removed: DynamoDB has no empty sets.
            None => document::remove(item, &path)?,
        }
    }
    Ok(())
}
