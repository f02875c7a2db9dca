//! Any text given as an expression parses or fails with a ValidationException, never panics; a parsed
//! condition is checked and evaluated against an item without panicking; a printed tree parses again.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use tern_expression::parse::{parse_condition, parse_projection, parse_update, ExpressionKind};
use tern_expression::{ExpressionSet, Placeholders};
use tern_proto::value::{AttributeValue, Item};

fuzz_target!(|text: &str| {
    let names: BTreeMap<String, String> = [("#a".to_string(), "a".to_string()), ("#b".to_string(), "b.c".to_string())].into();
    let values: Item = [
        (":n".to_string(), AttributeValue::N(7.into())),
        (":s".to_string(), AttributeValue::S("x".into())),
        (":l".to_string(), AttributeValue::L(vec![AttributeValue::Null])),
    ]
    .into();
    let item: Item = [
        ("a".to_string(), AttributeValue::N(1.into())),
        ("l".to_string(), AttributeValue::L(vec![AttributeValue::S("y".into())])),
        ("m".to_string(), AttributeValue::M([("k".to_string(), AttributeValue::Bool(true))].into())),
    ]
    .into();
    let ctx = Placeholders { names: &names, values: &values };
    if let Ok(condition) = parse_condition(ExpressionKind::Condition, text) {
        assert!(parse_condition(ExpressionKind::Condition, &condition.to_string()).is_ok(), "printed condition does not parse");
        if ExpressionSet::new(&names, &values).condition(ExpressionKind::Condition, text).is_ok() {
            let _ = tern_expression::condition::evaluate(&ctx, &condition, &item);
        }
    }
    if let Ok(update) = parse_update(text) {
        assert!(parse_update(&update.to_string()).is_ok(), "printed update does not parse");
        if ExpressionSet::new(&names, &values).update(text).is_ok() && tern_expression::update::check(&ctx, &update, &["pk"]).is_ok() {
            let mut changed = item.clone();
            let _ = tern_expression::update::apply(&ctx, &update, &mut changed);
        }
    }
    if let Ok(projection) = parse_projection(text) {
        let paths: Vec<_> = projection.0.iter().map(|p| ctx.resolve(p)).collect();
        let _ = tern_expression::projection::project(&item, &paths);
    }
});
