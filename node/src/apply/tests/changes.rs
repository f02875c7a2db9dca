//! The change feed's part of the apply path: every committed item change, at its command's timestamp,
//! in log order, with the item after it; table changes by name; nothing for writes that change nothing.

use tern_proto::internal::ChangedItem;

use super::batch::{at, batch, outcomes};
use super::*;

fn version_of(outcome: &command_outcome::Outcome) -> u64 {
    match outcome {
        command_outcome::Outcome::PutItem(r) => r.item_version.as_ref().unwrap().write_timestamp_micros,
        command_outcome::Outcome::DeleteItem(r) => r.item_version.as_ref().unwrap().write_timestamp_micros,
        other => panic!("{other:?}"),
    }
}

fn value(change: &ChangedItem) -> Option<String> {
    let image = change.new_image.as_ref()?;
    match image.attributes.get("val").and_then(|v| v.value.clone()) {
        Some(Value::S(s)) => Some(s),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_committed_change_is_reported_at_its_commands_timestamp_in_log_order() {
    let mut node = Machine::new(Memory::new());
    node.ok(create_table(false));
    assert_eq!(node.changes().tables, ["things"], "a new table is reported, with no stream needed");
    let first = version_of(&node.ok(user_write(1, Some(1))));
    let refused = command::Op::PutItem(v1::PutItemRequest {
        table_name: "things".into(),
        item: key_attributes(1),
        condition_expression: "attribute_not_exists(pk)".into(),
        ..Default::default()
    });
    let outcome = node.entry(batch(vec![
        at(user_write(1, Some(2)), 9_000_000, None),
        at(refused, 9_000_000, None),
        // Deleting an item that is not there changes nothing.
        at(user_write(2, None), 9_000_000, None),
        at(user_write(1, None), 9_000_000, None),
    ]));
    let outcomes = outcomes(outcome);
    let changes = node.changes();
    assert!(changes.tables.is_empty());
    let seen: Vec<(u64, String, Option<String>)> =
        changes.items.iter().map(|c| (c.position, json_key(c), value(c))).collect();
    assert_eq!(
        seen,
        [
            (first, "k1".to_string(), Some("v1".to_string())),
            (version_of(&outcomes[0]), "k1".to_string(), Some("v2".to_string())),
            (version_of(&outcomes[3]), "k1".to_string(), None),
        ]
    );
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "positions rise in log order: {seen:?}");
    assert!(changes.items.iter().all(|c| c.table_name == "things" && c.version.is_some()));
    // The feed's position after the entry is the clock: the last change's, here.
    assert_eq!(node.applier.clock(), seen[2].0);
}

fn json_key(change: &ChangedItem) -> String {
    match change.key.get("pk").and_then(|v| v.value.clone()) {
        Some(Value::S(s)) => s,
        other => panic!("{other:?}"),
    }
}
