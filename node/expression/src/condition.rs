//! Evaluating conditions against an item, with DynamoDB's semantics for missing attributes and
//! mismatched types (a comparison that cannot be made is false, `<>` with a missing side is true).

use std::borrow::Cow;
use std::cmp::Ordering;

use tern_proto::value::{AttributeValue, Item};
use tern_proto::{ApiError, Number};

use super::ast::{Comparator, Condition, Function, Operand};
use super::document::{get, Placeholders};

/// The value of a condition operand, when there is one.
pub fn operand<'a>(
    ctx: &'a Placeholders,
    op: &Operand,
    item: &'a Item,
) -> Result<Option<Cow<'a, AttributeValue>>, ApiError> {
    Ok(match op {
        Operand::Path(path) => get(item, &ctx.resolve(path)).map(Cow::Borrowed),
        Operand::Value(placeholder) => Some(Cow::Borrowed(ctx.value(placeholder)?)),
        Operand::Size(path) => {
            get(item, &ctx.resolve(path)).and_then(size).map(|n| Cow::Owned(AttributeValue::N(n.into())))
        }
        other => return Err(ApiError::validation(format!("The operand {other} is not allowed in a condition"))),
    })
}

/// `size()`: bytes of a string or binary, elements of a set, list or map.
pub fn size(value: &AttributeValue) -> Option<usize> {
    match value {
        AttributeValue::S(s) => Some(s.len()),
        AttributeValue::B(b) => Some(b.len()),
        AttributeValue::L(l) => Some(l.len()),
        AttributeValue::M(m) => Some(m.len()),
        AttributeValue::Ss(s) => Some(s.len()),
        AttributeValue::Ns(s) => Some(s.len()),
        AttributeValue::Bs(s) => Some(s.len()),
        _ => None,
    }
}

/// DynamoDB's equality: numbers by value, sets regardless of order.
pub fn equal(a: &AttributeValue, b: &AttributeValue) -> bool {
    fn sorted<T: Ord + Clone>(v: &[T]) -> Vec<T> {
        let mut v = v.to_vec();
        v.sort();
        v
    }
    match (a, b) {
        (AttributeValue::Ss(x), AttributeValue::Ss(y)) => sorted(x) == sorted(y),
        (AttributeValue::Ns(x), AttributeValue::Ns(y)) => sorted(x) == sorted(y),
        (AttributeValue::Bs(x), AttributeValue::Bs(y)) => sorted(x) == sorted(y),
        (AttributeValue::L(x), AttributeValue::L(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(a, b)),
        (AttributeValue::M(x), AttributeValue::M(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        _ => a == b,
    }
}

/// The order of two scalars of the same type (N, S or B); None when they cannot be compared.
pub fn order(a: &AttributeValue, b: &AttributeValue) -> Option<Ordering> {
    match (a, b) {
        (AttributeValue::N(x), AttributeValue::N(y)) => Some(x.cmp(y)),
        (AttributeValue::S(x), AttributeValue::S(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (AttributeValue::B(x), AttributeValue::B(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn compare(c: Comparator, a: Option<&AttributeValue>, b: Option<&AttributeValue>) -> bool {
    match (c, a, b) {
        (Comparator::Eq, Some(a), Some(b)) => equal(a, b),
        (Comparator::Eq, _, _) => false,
        (Comparator::Ne, Some(a), Some(b)) => !equal(a, b),
        (Comparator::Ne, _, _) => true,
        (_, Some(a), Some(b)) => match order(a, b) {
            Some(o) => match c {
                Comparator::Lt => o == Ordering::Less,
                Comparator::Le => o != Ordering::Greater,
                Comparator::Gt => o == Ordering::Greater,
                Comparator::Ge => o != Ordering::Less,
                Comparator::Eq | Comparator::Ne => unreachable!("handled above"),
            },
            None => false,
        },
        _ => false,
    }
}

fn contains(container: &AttributeValue, member: &AttributeValue) -> bool {
    match (container, member) {
        (AttributeValue::S(s), AttributeValue::S(m)) => s.contains(m.as_str()),
        (AttributeValue::B(b), AttributeValue::B(m)) => m.is_empty() || b.windows(m.len()).any(|w| w == m.as_slice()),
        (AttributeValue::Ss(set), AttributeValue::S(m)) => set.contains(m),
        (AttributeValue::Ns(set), AttributeValue::N(m)) => set.contains(m),
        (AttributeValue::Bs(set), AttributeValue::B(m)) => set.contains(m),
        (AttributeValue::L(list), m) => list.iter().any(|v| equal(v, m)),
        _ => false,
    }
}

/// Whether `item` (absent attributes where the item does not exist) satisfies the condition.
pub fn evaluate(ctx: &Placeholders, condition: &Condition, item: &Item) -> Result<bool, ApiError> {
    Ok(match condition {
        Condition::Compare(a, c, b) => {
            compare(*c, operand(ctx, a, item)?.as_deref(), operand(ctx, b, item)?.as_deref())
        }
        Condition::Between(x, low, high) => {
            let (x, low, high) = (operand(ctx, x, item)?, operand(ctx, low, item)?, operand(ctx, high, item)?);
            match (x.as_deref(), low.as_deref(), high.as_deref()) {
                (Some(x), Some(low), Some(high)) => {
                    matches!(order(low, x), Some(Ordering::Less | Ordering::Equal))
                        && matches!(order(x, high), Some(Ordering::Less | Ordering::Equal))
                }
                _ => false,
            }
        }
        Condition::In(x, list) => {
            let Some(x) = operand(ctx, x, item)? else { return Ok(false) };
            let mut found = false;
            for candidate in list {
                if operand(ctx, candidate, item)?.is_some_and(|c| equal(&x, &c)) {
                    found = true;
                    break;
                }
            }
            found
        }
        Condition::Function(function) => match function {
            Function::AttributeExists(path) => get(item, &ctx.resolve(path)).is_some(),
            Function::AttributeNotExists(path) => get(item, &ctx.resolve(path)).is_none(),
            Function::AttributeType(path, t) => {
                let wanted = operand(ctx, t, item)?;
                match (get(item, &ctx.resolve(path)), wanted.as_deref()) {
                    (Some(value), Some(AttributeValue::S(name))) => value.type_name() == name,
                    _ => false,
                }
            }
            Function::BeginsWith(path, prefix) => {
                let prefix = operand(ctx, prefix, item)?;
                match (get(item, &ctx.resolve(path)), prefix.as_deref()) {
                    (Some(AttributeValue::S(s)), Some(AttributeValue::S(p))) => s.starts_with(p.as_str()),
                    (Some(AttributeValue::B(b)), Some(AttributeValue::B(p))) => b.starts_with(p),
                    _ => false,
                }
            }
            Function::Contains(path, member) => {
                let member = operand(ctx, member, item)?;
                match (get(item, &ctx.resolve(path)), member.as_deref()) {
                    (Some(container), Some(member)) => contains(container, member),
                    _ => false,
                }
            }
        },
        Condition::Not(c) => !evaluate(ctx, c, item)?,
        Condition::And(a, b) => evaluate(ctx, a, item)? && evaluate(ctx, b, item)?,
        Condition::Or(a, b) => evaluate(ctx, a, item)? || evaluate(ctx, b, item)?,
        Condition::Parenthesized(c) => evaluate(ctx, c, item)?,
    })
}

/// A number from arithmetic, checked against DynamoDB's precision and range.
pub fn number(text: &str) -> Result<Number, ApiError> {
    text.parse::<Number>().map_err(|e| ApiError::validation(e.to_string()))
}
