//! Retries applied once: a client session's retried call answered with its first outcome, and a
//! transaction's ClientRequestToken within its window.

use super::*;

pub(super) fn add_one() -> command::Op {
    command::Op::UpdateItem(v1::UpdateItemRequest {
        table_name: "things".into(),
        key: key_attributes(1),
        update_expression: "ADD n :one".into(),
        expression_attribute_values: BTreeMap::from([(
            ":one".to_string(),
            v1::AttributeValue { value: Some(Value::N("1".into())) },
        )]),
        return_values: "UPDATED_NEW".into(),
        ..Default::default()
    })
}

pub(super) fn counter(machine: &Machine<impl Engine + ReadView>) -> Option<String> {
    let items = machine.family(Family::Items);
    let item: StoredItem = engine::decode("item", &items.first()?.1).unwrap();
    match item.attributes.get("n").and_then(|v| v.value.clone()) {
        Some(Value::N(n)) => Some(n),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_retried_session_call_is_answered_with_its_first_outcome_and_applied_once() {
    use tern_proto::internal::ClientSession;
    let mut node = Machine::new(Memory::new());
    node.ok(create_table(false));
    let call = |sequence, completed_below| ClientSession { id: "s1".into(), sequence, completed_below };
    let first = node.call(add_one(), call(1, 0), 2_000_000);
    let retry = node.call(add_one(), call(1, 0), 2_000_100);
    assert_eq!(retry, first, "the retry gets the first outcome");
    assert_eq!(counter(&node).as_deref(), Some("1"), "and the ADD applied once");
    // Another call of the session, and a call of another session, apply.
    node.call(add_one(), call(2, 1), 2_000_200);
    node.call(add_one(), ClientSession { id: "s2".into(), sequence: 1, completed_below: 0 }, 2_000_300);
    assert_eq!(counter(&node).as_deref(), Some("3"));
    // A refusal is remembered too: the retry of a call that failed its condition fails the same way.
    let refused = command::Op::PutItem(v1::PutItemRequest {
        table_name: "things".into(),
        item: key_attributes(1),
        condition_expression: "attribute_not_exists(pk)".into(),
        ..Default::default()
    });
    let outcome = node.call(refused.clone(), call(3, 1), 2_000_400);
    assert!(matches!(outcome, command_outcome::Outcome::Error(_)), "{outcome:?}");
    assert_eq!(node.call(refused, call(3, 1), 2_000_500), outcome);

    // Finished calls are forgotten: calls 1 and 2 go once the client says calls below 3 are done, and a
    // retry of a forgotten call is refused rather than applied again.
    let remembered = |node: &Machine<Memory>| {
        node.family(Family::Meta).iter().filter(|(k, _)| k.starts_with(b"session/s1/")).count()
    };
    assert_eq!(remembered(&node), 3);
    node.call(add_one(), call(4, 3), 2_000_600);
    assert_eq!(remembered(&node), 2, "calls 3 and 4 remain");
    let outcome = node.call(add_one(), call(1, 3), 2_000_650);
    let command_outcome::Outcome::Error(error) = outcome else { panic!("{outcome:?}") };
    assert!(error.message.contains("outcome is unknown"), "{}", error.message);
    assert_eq!(counter(&node).as_deref(), Some("4"));
    // A session idle for the window goes whole, on the leader's proposal.
    let forget =
        |before| command::Op::ForgetSessions(tern_proto::internal::ForgetSessions { idle_before_micros: before });
    node.ok(forget(2_000_600));
    assert_eq!(remembered(&node), 2, "s1's last call applied at the cutoff: kept");
    node.ok(forget(2_000_601));
    assert_eq!(remembered(&node), 0);
    assert!(
        node.family(Family::Meta).iter().all(|(k, _)| !k.starts_with(b"session")),
        "nothing of any session is left"
    );
}

fn transaction(token: &str, op: command::Op) -> command::Op {
    let command::Op::UpdateItem(update) = op else { panic!("an update") };
    command::Op::TransactWriteItems(v1::TransactWriteItemsRequest {
        transact_items: vec![v1::TransactWriteItem { action: Some(v1::transact_write_item::Action::Update(update)) }],
        client_request_token: token.into(),
    })
}

/// Runs `op` proposed at `at` microseconds, as the next entry.
fn run_at(machine: &mut Machine<Memory>, op: command::Op, at: u64) -> command_outcome::Outcome {
    machine.entry(Command { op: Some(op), proposed_at_micros: at, ..Default::default() })
}

#[test]
fn a_reused_tokens_new_record_outlives_the_old_records_expiry() {
    use crate::apply::transaction::IDEMPOTENCY_WINDOW_MICROS as WINDOW;
    let mut node = Machine::new(Memory::new());
    node.ok(create_table(false));
    // Seventeen tokens, "reused" the last: more expired tokens than one transaction forgets (16).
    let start = 10_000_000;
    for i in 0..16 {
        run_at(&mut node, transaction(&format!("t{i:02}"), add_one()), start + i);
    }
    run_at(&mut node, transaction("reused", add_one()), start + 16);
    assert_eq!(counter(&node).as_deref(), Some("17"));
    // After the window the token is used again (a new transaction): it applies.
    let later = start + WINDOW + 100;
    run_at(&mut node, transaction("reused", add_one()), later);
    assert_eq!(counter(&node).as_deref(), Some("18"));
    // Another transaction forgets the old expiry entry of "reused"; its new record must stay.
    run_at(&mut node, transaction("other", add_one()), later + 1_000_000);
    assert_eq!(counter(&node).as_deref(), Some("19"));
    // A retry of the second "reused" transaction within its window is answered, not applied again.
    run_at(&mut node, transaction("reused", add_one()), later + 2_000_000);
    assert_eq!(counter(&node).as_deref(), Some("19"), "the retry applied the transaction again");
}
