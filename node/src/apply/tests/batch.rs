//! Batch entries: the commands that arrived together, applied in one entry as they would apply one
//! entry each.

use tern_proto::internal::{ClientSession, CommandOutcome, Commands};

use super::retries::{add_one, counter};
use super::*;

pub(super) fn batch(commands: Vec<Command>) -> Command {
    Command { op: Some(command::Op::Batch(Commands { commands })), ..Default::default() }
}

pub(super) fn at(op: command::Op, micros: u64, session: Option<ClientSession>) -> Command {
    Command { op: Some(op), proposed_at_micros: micros, session, ..Default::default() }
}

pub(super) fn outcomes(outcome: command_outcome::Outcome) -> Vec<command_outcome::Outcome> {
    let command_outcome::Outcome::Batch(batch) = outcome else { panic!("a batch's outcomes: {outcome:?}") };
    batch.outcomes.into_iter().map(|CommandOutcome { outcome }| outcome.expect("an outcome")).collect()
}

fn new_value(outcome: &command_outcome::Outcome) -> String {
    let command_outcome::Outcome::UpdateItem(response) = outcome else { panic!("{outcome:?}") };
    match response.attributes.as_ref().and_then(|i| i.attributes.get("n")).and_then(|v| v.value.clone()) {
        Some(Value::N(n)) => n,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_batchs_commands_apply_in_order_each_seeing_the_ones_before() {
    let mut node = Machine::new(Memory::new());
    node.ok(create_table(true));
    let call = |id: &str, sequence| Some(ClientSession { id: id.into(), sequence, completed_below: 0 });
    let refused = command::Op::PutItem(v1::PutItemRequest {
        table_name: "things".into(),
        item: key_attributes(9),
        condition_expression: "attribute_exists(pk)".into(),
        ..Default::default()
    });
    let outcome = node.entry(batch(vec![
        at(add_one(), 5_000_000, call("s1", 1)),
        // A retry of the call just before, in the same entry: answered with its outcome, not applied.
        at(add_one(), 5_000_000, call("s1", 1)),
        at(refused, 5_000_000, None),
        at(add_one(), 5_000_000, call("s2", 1)),
        at(user_write(2, Some(7)), 4_000_000, None),
    ]));
    let outcomes = outcomes(outcome);
    assert_eq!(outcomes.len(), 5);
    assert_eq!(new_value(&outcomes[0]), "1");
    assert_eq!(outcomes[1], outcomes[0], "the retry gets the first outcome");
    let command_outcome::Outcome::Error(error) = &outcomes[2] else { panic!("{:?}", outcomes[2]) };
    assert_eq!(error.error_type, "ConditionalCheckFailedException");
    assert_eq!(new_value(&outcomes[3]), "2", "the third ADD saw the first");
    assert!(matches!(outcomes[4], command_outcome::Outcome::PutItem(_)), "{:?}", outcomes[4]);
    assert_eq!(counter(&node).as_deref(), Some("2"));

    // Three changes, so three records, at the entry's consecutive positions; each command has its own
    // timestamp, rising in the batch's order even where a proposer's clock was behind.
    let positions: Vec<Seq> = stream(&node).iter().map(|(seq, _)| *seq).collect();
    assert_eq!(positions, vec![Seq { index: 2, n: 0 }, Seq { index: 2, n: 1 }, Seq { index: 2, n: 2 }]);
    assert_eq!(node.applier.clock(), 5_000_004, "one tick per command after the first at 5 s");
}

#[test]
fn a_batch_within_a_batch_is_refused_alone() {
    let mut node = Machine::new(Memory::new());
    node.ok(create_table(false));
    let inner = batch(vec![at(user_write(1, Some(1)), 2_000_000, None)]);
    let outcomes = outcomes(node.entry(batch(vec![inner, at(user_write(2, Some(2)), 2_000_000, None)])));
    assert!(matches!(&outcomes[0], command_outcome::Outcome::Error(e) if e.error_type == "InternalServerError"));
    assert!(matches!(outcomes[1], command_outcome::Outcome::PutItem(_)));
    assert_eq!(node.family(Family::Items).len(), 1, "only the second command's item");
}

/// A user's command for the equivalence property: a put or delete of one of five keys, an ADD, a batch
/// of writes, or a put whose condition may fail; some as calls of a client session (sequence numbers
/// from 1 to 4: a repeated one is a retry).
fn user_command() -> impl Strategy<Value = (command::Op, Option<u64>)> {
    let op = prop_oneof![
        (0u8..5, proptest::option::of(0u8..3)).prop_map(|(key, value)| user_write(key, value)),
        Just(add_one()),
        proptest::collection::btree_map(0u8..5, proptest::option::of(0u8..3), 1..4).prop_map(|w| user_batch(&w)),
        (0u8..5).prop_map(|key| command::Op::PutItem(v1::PutItemRequest {
            table_name: "things".into(),
            item: key_attributes(key),
            condition_expression: "attribute_not_exists(pk)".into(),
            ..Default::default()
        })),
    ];
    (op, proptest::option::of(1u64..5))
}

proptest! {
    /// Commands applied as batch entries leave the same state (items, tables and their counters,
    /// sessions, the clock, the stream's records), and answer the same, as the same commands applied one
    /// entry each.
    #[test]
    fn batched_commands_apply_as_one_entry_each(
        ops in proptest::collection::vec(user_command(), 1..30),
        cuts in proptest::collection::vec(1usize..6, 1..30),
    ) {
        let call = |sequence| ClientSession { id: "s1".into(), sequence, completed_below: 0 };
        let commands: Vec<Command> = ops
            .into_iter()
            .enumerate()
            .map(|(i, (op, sequence))| at(op, 3_000_000 + i as u64 * 7 % 5, sequence.map(call)))
            .collect();
        let (mut alone, mut batched) = (Machine::new(Memory::new()), Machine::new(Memory::new()));
        alone.ok(create_table(true));
        batched.ok(create_table(true));
        let one_each: Vec<_> = commands.iter().map(|c| alone.entry(c.clone())).collect();
        let mut together = Vec::new();
        let mut rest = commands.as_slice();
        for cut in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (now, later) = rest.split_at((*cut).min(rest.len()));
            together.extend(outcomes(batched.entry(batch(now.to_vec()))));
            rest = later;
        }
        prop_assert_eq!(one_each, together);
        for family in [Family::Items, Family::Tables, Family::Meta, Family::Streams, Family::TtlIndex] {
            prop_assert_eq!(alone.family(family), batched.family(family), "{:?}", family);
        }
        // The same records, at other positions (so with other sequence numbers and event ids).
        let records = |node: &Machine<Memory>| {
            let unplaced = |(_, mut record): (Seq, StreamRecord)| {
                record.event_id.clear();
                record.dynamodb.as_mut().expect("a change").sequence_number.clear();
                record
            };
            stream(node).into_iter().map(unplaced).collect::<Vec<_>>()
        };
        prop_assert_eq!(records(&alone), records(&batched));
        prop_assert_eq!(alone.applier.clock(), batched.applier.clock());
    }
}

#[test]
fn a_batch_of_more_commands_than_a_proposer_makes_is_refused_whole() {
    let mut node = Machine::new(Memory::new());
    node.ok(create_table(false));
    let commands = (0..=crate::apply::entry::MAX_BATCH_COMMANDS)
        .map(|i| at(user_write((i % 5) as u8, Some(1)), 2_000_000, None))
        .collect();
    let outcomes = outcomes(node.entry(batch(commands)));
    assert_eq!(outcomes.len(), crate::apply::entry::MAX_BATCH_COMMANDS + 1);
    assert!(outcomes
        .iter()
        .all(|o| matches!(o, command_outcome::Outcome::Error(e) if e.error_type == "InternalServerError")));
    assert!(node.family(Family::Items).is_empty());
}

#[test]
fn a_command_with_no_operation_this_build_knows_stops_the_apply() {
    let mut node = Machine::new(Memory::new());
    node.ok(create_table(false));
    let unknown = Command { op: None, proposed_at_micros: 2_000_000, ..Default::default() };
    let failure = node.applier.apply(&mut Overlay::new(&node.engine), 2, unknown).unwrap_err();
    assert!(matches!(failure, engine::StorageError::Corrupt { what: "command", .. }), "{failure:?}");
}
