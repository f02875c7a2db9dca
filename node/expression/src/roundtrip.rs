//! Property tests of the parsers: print a random syntax tree, parse it back, get the same tree.

use proptest::prelude::*;

use super::ast::*;
use super::parse::{parse_condition, parse_projection, parse_update, ExpressionKind};

const KEYWORDS: [&str; 9] = ["and", "or", "not", "between", "in", "set", "remove", "add", "delete"];

fn name() -> impl Strategy<Value = Name> {
    prop_oneof![
        "[a-z_][a-z0-9_]{0,6}".prop_filter("not a keyword", |n| !KEYWORDS.contains(&n.as_str())).prop_map(Name::Bare),
        "#[a-zA-Z0-9_]{1,5}".prop_map(Name::Placeholder),
    ]
}

fn path() -> impl Strategy<Value = Path> {
    let step = prop_oneof![name().prop_map(Step::Name), (0u32..50).prop_map(Step::Index)];
    (name(), proptest::collection::vec(step, 0..3))
        .prop_map(|(first, rest)| Path(std::iter::once(Step::Name(first)).chain(rest).collect()))
}

fn value() -> impl Strategy<Value = String> {
    ":[a-zA-Z0-9_]{1,5}"
}

fn operand() -> impl Strategy<Value = Operand> {
    prop_oneof![path().prop_map(Operand::Path), value().prop_map(Operand::Value), path().prop_map(Operand::Size)]
}

fn comparator() -> impl Strategy<Value = Comparator> {
    prop_oneof![
        Just(Comparator::Eq),
        Just(Comparator::Ne),
        Just(Comparator::Lt),
        Just(Comparator::Le),
        Just(Comparator::Gt),
        Just(Comparator::Ge)
    ]
}

fn predicate() -> impl Strategy<Value = Condition> {
    prop_oneof![
        (operand(), comparator(), operand()).prop_map(|(a, c, b)| Condition::Compare(a, c, b)),
        (operand(), operand(), operand()).prop_map(|(a, b, c)| Condition::Between(a, b, c)),
        (operand(), proptest::collection::vec(operand(), 1..4)).prop_map(|(a, list)| Condition::In(a, list)),
        path().prop_map(|p| Condition::Function(Function::AttributeExists(p))),
        path().prop_map(|p| Condition::Function(Function::AttributeNotExists(p))),
        (path(), operand()).prop_map(|(p, o)| Condition::Function(Function::AttributeType(p, o))),
        (path(), operand()).prop_map(|(p, o)| Condition::Function(Function::BeginsWith(p, o))),
        (path(), operand()).prop_map(|(p, o)| Condition::Function(Function::Contains(p, o))),
    ]
}

fn condition() -> impl Strategy<Value = Condition> {
    predicate().prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|c| Condition::Not(Box::new(c))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Condition::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Condition::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|c| Condition::Parenthesized(Box::new(c))),
        ]
    })
}

fn wrap_if(c: Condition, wrap: impl Fn(&Condition) -> bool) -> Box<Condition> {
    Box::new(if wrap(&c) { Condition::Parenthesized(Box::new(c)) } else { c })
}

/// Adds the parentheses a printed tree needs to parse back the same: OR binds loosest, then AND
/// (both left-associative), then NOT.
fn normalized(c: Condition) -> Condition {
    let is_or = |c: &Condition| matches!(c, Condition::Or(..));
    let is_and_or = |c: &Condition| matches!(c, Condition::Or(..) | Condition::And(..));
    match c {
        Condition::Or(a, b) => Condition::Or(Box::new(normalized(*a)), wrap_if(normalized(*b), is_or)),
        Condition::And(a, b) => Condition::And(wrap_if(normalized(*a), is_or), wrap_if(normalized(*b), is_and_or)),
        Condition::Not(a) => Condition::Not(wrap_if(normalized(*a), is_and_or)),
        Condition::Parenthesized(a) => Condition::Parenthesized(Box::new(normalized(*a))),
        other => other,
    }
}

fn set_operand() -> impl Strategy<Value = Operand> {
    let leaf = prop_oneof![path().prop_map(Operand::Path), value().prop_map(Operand::Value)];
    leaf.prop_recursive(2, 8, 2, |inner| {
        prop_oneof![
            (path(), inner.clone()).prop_map(|(p, v)| Operand::IfNotExists(p, Box::new(v))),
            (inner.clone(), inner).prop_map(|(a, b)| Operand::ListAppend(Box::new(a), Box::new(b))),
        ]
    })
}

fn set_value() -> impl Strategy<Value = Operand> {
    prop_oneof![
        set_operand(),
        (set_operand(), set_operand()).prop_map(|(a, b)| Operand::Plus(Box::new(a), Box::new(b))),
        (set_operand(), set_operand()).prop_map(|(a, b)| Operand::Minus(Box::new(a), Box::new(b))),
    ]
}

fn update() -> impl Strategy<Value = Update> {
    let pairs = || proptest::collection::vec((path(), value().prop_map(Operand::Value)), 0..3);
    (proptest::collection::vec((path(), set_value()), 0..3), proptest::collection::vec(path(), 0..3), pairs(), pairs())
        .prop_map(|(set, remove, add, delete)| Update { set, remove, add, delete })
        .prop_filter("at least one clause", |u| {
            !(u.set.is_empty() && u.remove.is_empty() && u.add.is_empty() && u.delete.is_empty())
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn conditions_print_and_parse_back(c in condition()) {
        let c = normalized(c);
        let text = c.to_string();
        prop_assert_eq!(parse_condition(ExpressionKind::Condition, &text).map_err(|e| e.message), Ok(c), "{}", text);
    }

    #[test]
    fn updates_print_and_parse_back(u in update()) {
        let text = u.to_string();
        prop_assert_eq!(parse_update(&text).map_err(|e| e.message), Ok(u), "{}", text);
    }

    #[test]
    fn projections_print_and_parse_back(paths in proptest::collection::vec(path(), 1..5)) {
        let p = Projection(paths);
        let text = p.to_string();
        prop_assert_eq!(parse_projection(&text).map_err(|e| e.message), Ok(p), "{}", text);
    }
}
