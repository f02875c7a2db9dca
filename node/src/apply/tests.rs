//! Property tests of the apply path, on the in-memory engine (and against RocksDB where the point is
//! that the engine does not matter): last writer wins in any order, tombstones and the safe point,
//! and stream positions.

mod backups;
mod batch;
mod changes;
mod retries;

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use tern_proto::internal::{command, command_outcome, Command, PurgeTombstones, StoredItem};
use tern_proto::v1::attribute_value::Value;
use tern_proto::v1::{self, ItemVersion, ReplicationCheckpoint, StreamRecord};

use super::Applier;
use crate::engine::{self, Direction, Engine, Memory, Overlay, ReadView, Rocks};
use crate::global::{Phase, ReplicaStatus};
use crate::keyspace::{self, Family, Seq};

/// A state machine's apply path over an engine, fed one command per entry.
pub(super) struct Machine<E: Engine + ReadView> {
    pub(super) engine: E,
    applier: Applier,
    index: u64,
}

impl<E: Engine + ReadView> Machine<E> {
    pub(super) fn new(engine: E) -> Self {
        let applier = Applier::load(&engine, "here").expect("an empty engine loads");
        Machine { engine, applier, index: 0 }
    }

    /// Applies `command` as the next entry, written as the state machine writes it.
    pub(super) fn entry(&mut self, command: Command) -> command_outcome::Outcome {
        self.index += 1;
        let mut state = Overlay::new(&self.engine);
        let outcome = self.applier.apply(&mut state, self.index, command).expect("storage works");
        let writes = state.into_writes();
        self.engine.write(writes, false).expect("storage works");
        outcome
    }

    /// Applies `op` as the next entry, proposed at `1_000_000 + index` microseconds.
    pub(super) fn run(&mut self, op: command::Op) -> command_outcome::Outcome {
        let at = 1_000_000 + self.index + 1;
        self.entry(Command { op: Some(op), proposed_at_micros: at, ..Default::default() })
    }

    /// Applies `op` as one call of a client session, proposed at `at` microseconds.
    fn call(
        &mut self,
        op: command::Op,
        session: tern_proto::internal::ClientSession,
        at: u64,
    ) -> command_outcome::Outcome {
        self.entry(Command { op: Some(op), proposed_at_micros: at, session: Some(session), ..Default::default() })
    }

    /// Applies `op` and expects it to succeed.
    fn ok(&mut self, op: command::Op) -> command_outcome::Outcome {
        let outcome = self.run(op);
        assert!(!matches!(outcome, command_outcome::Outcome::Error(_)), "{outcome:?}");
        outcome
    }

    /// What the entries applied since the last call changed, for the change feed.
    pub(super) fn changes(&mut self) -> crate::changes::Changes {
        self.applier.take_changes()
    }

    fn family(&self, family: Family) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.engine.scan(family, &[], None, Direction::Forward).map(|e| e.expect("readable")).collect()
    }
}

fn s(text: impl Into<String>) -> v1::AttributeValue {
    v1::AttributeValue { value: Some(Value::S(text.into())) }
}

fn create_table(stream: bool) -> command::Op {
    command::Op::CreateTable(v1::CreateTableRequest {
        table_name: "things".into(),
        attribute_definitions: vec![v1::AttributeDefinition {
            attribute_name: "pk".into(),
            attribute_type: "S".into(),
        }],
        key_schema: vec![v1::KeySchemaElement { attribute_name: "pk".into(), key_type: "HASH".into() }],
        stream_specification: stream.then(|| v1::StreamSpecification {
            stream_enabled: true,
            stream_view_type: "NEW_AND_OLD_IMAGES".into(),
            retention_days: 0,
        }),
        ..Default::default()
    })
}

/// Makes "things" a global table with replicas here and in `others`.
fn make_global(machine: &mut Machine<impl Engine + ReadView>, others: &[&str]) {
    let replicas = std::iter::once("here")
        .chain(others.iter().copied())
        .map(|r| v1::ReplicaDescription {
            region_name: r.to_string(),
            replica_status: ReplicaStatus::Active.as_str().into(),
            ..Default::default()
        })
        .collect();
    machine.ok(command::Op::SetReplicas(v1::SetReplicasRequest {
        table_name: "things".into(),
        replicas,
        ..Default::default()
    }));
}

fn key_attributes(key: u8) -> BTreeMap<String, v1::AttributeValue> {
    BTreeMap::from([("pk".to_string(), s(format!("k{key}")))])
}

/// One replicated change: key, timestamp, origin, and the value put (none for a delete).
type Change = (u8, u64, u8, Option<u8>);
const REGIONS: [&str; 3] = ["a", "b", "c"];

fn replicated(change: &Change, checkpoint: Option<ReplicationCheckpoint>) -> command::Op {
    let (key, timestamp, origin, value) = *change;
    let new_image = value.map(|v| {
        let mut attributes = key_attributes(key);
        attributes.insert("val".into(), s(format!("v{v}")));
        v1::Item { attributes }
    });
    let origin = REGIONS[origin as usize].to_string();
    command::Op::ApplyReplicated(v1::ApplyReplicatedRequest {
        table_name: "things".into(),
        source_region: origin.clone(),
        changes: vec![v1::ReplicatedChange {
            key: key_attributes(key),
            new_image,
            version: Some(ItemVersion { write_timestamp_micros: timestamp, origin_region: origin }),
        }],
        checkpoint,
        copy: true,
        ..Default::default()
    })
}

/// Applies replicated writes, one entry each, over `engine`; returns the live items as
/// key -> (value, timestamp, origin).
fn apply_all(changes: &[Change], engine: impl Engine + ReadView) -> BTreeMap<String, (String, u64, String)> {
    let mut machine = Machine::new(engine);
    machine.ok(create_table(false));
    make_global(&mut machine, &REGIONS);
    for change in changes {
        machine.ok(replicated(change, None));
    }
    let mut live = BTreeMap::new();
    for (_, value) in machine.family(Family::Items) {
        let item: StoredItem = engine::decode("item", &value).unwrap();
        let text = |name: &str| match item.attributes.get(name).and_then(|v| v.value.clone()) {
            Some(Value::S(text)) => text,
            other => panic!("unexpected {other:?}"),
        };
        live.insert(text("pk"), (text("val"), item.write_timestamp_micros, item.origin_region.clone()));
    }
    live
}

/// What last writer wins must give: per key, the change with the greatest version, when a put.
fn model(changes: &[Change]) -> BTreeMap<String, (String, u64, String)> {
    let mut winners: BTreeMap<u8, &Change> = BTreeMap::new();
    for change in changes {
        let version = |c: &Change| (c.1, REGIONS[c.2 as usize]);
        if winners.get(&change.0).is_none_or(|w| version(change) > version(w)) {
            winners.insert(change.0, change);
        }
    }
    winners
        .into_iter()
        .filter_map(|(key, (_, ts, origin, value))| {
            value.map(|v| (format!("k{key}"), (format!("v{v}"), *ts, REGIONS[*origin as usize].to_string())))
        })
        .collect()
}

fn unique_versions(mut changes: Vec<Change>) -> Vec<Change> {
    let mut seen = std::collections::HashSet::new();
    changes.retain(|c| seen.insert((c.1, c.2)));
    changes
}

/// The tombstones of "things" (table id 1) as (key, timestamp).
fn tombstones(machine: &Machine<impl Engine + ReadView>) -> BTreeSet<(u8, u64)> {
    machine
        .family(Family::Tombstones)
        .into_iter()
        .map(|(_, value)| {
            let tombstone: StoredItem = engine::decode("tombstone", &value).unwrap();
            let Some(Value::S(pk)) = tombstone.attributes.get("pk").and_then(|v| v.value.clone()) else {
                panic!("a tombstone holds the key")
            };
            (pk[1..].parse().unwrap(), tombstone.write_timestamp_micros)
        })
        .collect()
}

/// A user's write to "things" as one command: a put of `Some(value)` or a delete.
fn user_write(key: u8, value: Option<u8>) -> command::Op {
    match value {
        Some(v) => {
            let mut item = key_attributes(key);
            item.insert("val".into(), s(format!("v{v}")));
            command::Op::PutItem(v1::PutItemRequest { table_name: "things".into(), item, ..Default::default() })
        }
        None => command::Op::DeleteItem(v1::DeleteItemRequest {
            table_name: "things".into(),
            key: key_attributes(key),
            ..Default::default()
        }),
    }
}

/// A batch of users' writes as one command (one write per key).
fn user_batch(writes: &BTreeMap<u8, Option<u8>>) -> command::Op {
    let requests = writes
        .iter()
        .map(|(key, value)| v1::WriteRequest {
            request: Some(match value {
                Some(v) => {
                    let mut item = key_attributes(*key);
                    item.insert("val".into(), s(format!("v{v}")));
                    v1::write_request::Request::PutRequest(v1::PutRequest { item })
                }
                None => v1::write_request::Request::DeleteRequest(v1::DeleteRequest { key: key_attributes(*key) }),
            }),
        })
        .collect();
    command::Op::BatchWriteItem(v1::BatchWriteItemRequest {
        request_items: BTreeMap::from([("things".to_string(), v1::WriteRequestList { requests })]),
    })
}

/// The stream's records with their positions.
fn stream(machine: &Machine<impl Engine + ReadView>) -> Vec<(Seq, StreamRecord)> {
    machine
        .family(Family::StreamRecords)
        .into_iter()
        .map(|(key, value)| {
            let (_, seq) = keyspace::parse_record_key(&key).expect("a record key");
            (seq, engine::decode("stream record", &value).unwrap())
        })
        .collect()
}

/// One entry of users' writes: a single write or a batch.
fn entries() -> impl Strategy<Value = Vec<BTreeMap<u8, Option<u8>>>> {
    proptest::collection::vec(proptest::collection::btree_map(0u8..5, proptest::option::of(0u8..3), 1..4), 1..12)
}

fn apply_entries(machine: &mut Machine<impl Engine + ReadView>, entries: &[BTreeMap<u8, Option<u8>>]) {
    machine.ok(create_table(true));
    for writes in entries {
        let op = match writes.len() {
            1 => {
                let (key, value) = writes.iter().next().unwrap();
                user_write(*key, *value)
            }
            _ => user_batch(writes),
        };
        machine.ok(op);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Replicated writes (puts and deletes, several regions, ties on the timestamp) applied in any
    /// order give the same table, and it is the last-writer-wins one.
    #[test]
    fn any_order_of_replicated_writes_gives_the_same_table(
        (changes, shuffled) in proptest::collection::vec(
            (0u8..4, 1u64..12, 0u8..3, proptest::option::of(0u8..5)), 1..14,
        )
        .prop_map(unique_versions)
        .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
    ) {
        let in_order = apply_all(&changes, Memory::new());
        prop_assert_eq!(&in_order, &apply_all(&shuffled, Memory::new()));
        prop_assert_eq!(&in_order, &model(&changes));
        let dir = tempfile::tempdir().unwrap();
        prop_assert_eq!(&apply_all(&shuffled, Rocks::open(&dir.path().join("db")).unwrap()), &in_order);
    }

    /// A tombstone goes only when it is older than the safe point: the least of every source's
    /// watermark (0 while a source is not following its stream) and the other regions' safe point; a
    /// purge with a limit looks at that many tombstones per entry and says where the next goes on.
    #[test]
    fn tombstones_are_purged_only_behind_the_safe_point(
        deletes in proptest::collection::btree_map(0u8..8, 1u64..100, 1..8),
        watermark_a in 0u64..120,
        watermark_b in proptest::option::of(0u64..120),
        others in 0u64..120,
        limit in 0u32..4,
    ) {
        let mut machine = Machine::new(Memory::new());
        machine.ok(create_table(false));
        make_global(&mut machine, &["a", "b"]);
        for (key, timestamp) in &deletes {
            machine.ok(replicated(&(*key, *timestamp, 0, None), None));
        }
        prop_assert_eq!(tombstones(&machine), deletes.iter().map(|(k, t)| (*k, *t)).collect::<BTreeSet<_>>());
        let tailing = |source: &str, watermark: u64| ReplicationCheckpoint {
            source_region: source.into(),
            phase: Phase::Tailing.as_str().into(),
            source_watermark_micros: watermark,
            ..Default::default()
        };
        // Checkpoints arrive with empty pages; "b" may still be copying.
        machine.ok(command::Op::ApplyReplicated(v1::ApplyReplicatedRequest {
            table_name: "things".into(), source_region: "a".into(), checkpoint: Some(tailing("a", watermark_a)), copy: true, ..Default::default()
        }));
        let checkpoint_b = match watermark_b {
            Some(w) => tailing("b", w),
            // A copy's watermark does not count: the source's older writes may still arrive.
            None => ReplicationCheckpoint {
                source_region: "b".into(),
                phase: Phase::Copying.as_str().into(),
                source_watermark_micros: 1_000,
                ..Default::default()
            },
        };
        machine.ok(command::Op::ApplyReplicated(v1::ApplyReplicatedRequest {
            table_name: "things".into(), source_region: "b".into(), checkpoint: Some(checkpoint_b), copy: true, ..Default::default()
        }));
        // The purge goes through the tombstones `limit` at a time (one entry each), from its cursor.
        let safe_point = watermark_a.min(watermark_b.unwrap_or(0)).min(others);
        let (mut start_after, mut purged, mut entries) = (Vec::new(), 0usize, 0usize);
        loop {
            let outcome = machine.ok(command::Op::PurgeTombstones(PurgeTombstones {
                table_name: "things".into(), other_regions_safe_point_micros: others, start_after, limit,
            }));
            let command_outcome::Outcome::PurgeTombstones(outcome) = outcome else { panic!("{outcome:?}") };
            prop_assert_eq!(outcome.safe_point_micros, safe_point);
            if limit > 0 {
                prop_assert!(outcome.purged <= limit, "{} purged in one entry, limit {limit}", outcome.purged);
            }
            purged += outcome.purged as usize;
            entries += 1;
            prop_assert!(entries <= deletes.len() + 1, "the cursor moves on");
            if outcome.next_start_after.is_empty() {
                break;
            }
            start_after = outcome.next_start_after;
        }
        let kept: BTreeSet<(u8, u64)> = deletes.iter().filter(|(_, t)| **t >= safe_point).map(|(k, t)| (*k, *t)).collect();
        prop_assert_eq!(tombstones(&machine), kept.clone());
        prop_assert_eq!(purged, deletes.len() - kept.len());
    }

    /// Stream records take the positions of their entries: `(index, 0..n)` for the n records an
    /// entry writes, in log order, one per change that changed something, with the sequence number
    /// their key holds; and the same commands give the same stream on RocksDB as in memory.
    #[test]
    fn stream_positions_follow_the_log(entries in entries()) {
        let mut machine = Machine::new(Memory::new());
        apply_entries(&mut machine, &entries);
        let records = stream(&machine);
        // The model: the item each key holds, and how many records each entry must write.
        let mut items: BTreeMap<u8, Option<u8>> = BTreeMap::new();
        let mut expected = Vec::new();
        for (n, writes) in entries.iter().enumerate() {
            let index = n as u64 + 2; // Entry 1 created the table.
            let mut written = 0u16;
            for (key, value) in writes {
                let before = items.get(key).copied().flatten();
                let event = match (before, value) {
                    (None, Some(_)) => Some("INSERT"),
                    (Some(old), Some(new)) if old != *new => Some("MODIFY"),
                    (Some(_), None) => Some("REMOVE"),
                    _ => None,
                };
                if let Some(event) = event {
                    expected.push((Seq { index, n: written }, *key, event));
                    written += 1;
                }
                items.insert(*key, *value);
            }
        }
        let actual: Vec<(Seq, u8, &str)> = records
            .iter()
            .map(|(seq, record)| {
                let data = record.dynamodb.as_ref().expect("record data");
                prop_assert_eq!(&data.sequence_number, &seq.text());
                let Some(Value::S(pk)) = data.keys.as_ref().and_then(|k| k.attributes.get("pk")).and_then(|v| v.value.clone()) else {
                    panic!("a record names its key")
                };
                Ok((*seq, pk[1..].parse().unwrap(), record.event_name.as_str()))
            })
            .collect::<Result<_, TestCaseError>>()?;
        prop_assert_eq!(actual, expected);

        let dir = tempfile::tempdir().unwrap();
        let mut on_rocks = Machine::new(Rocks::open(&dir.path().join("db")).unwrap());
        apply_entries(&mut on_rocks, &entries);
        prop_assert_eq!(on_rocks.family(Family::StreamRecords), machine.family(Family::StreamRecords));
        prop_assert_eq!(on_rocks.family(Family::Items), machine.family(Family::Items));
    }
}

#[test]
fn a_refused_command_is_the_entry_outcome_and_changes_no_item() {
    let mut machine = Machine::new(Memory::new());
    machine.ok(create_table(true));
    machine.ok(user_write(1, Some(1)));
    let conditional = v1::PutItemRequest {
        table_name: "things".into(),
        item: key_attributes(1),
        condition_expression: "attribute_not_exists(pk)".into(),
        ..Default::default()
    };
    let outcome = machine.run(command::Op::PutItem(conditional));
    let command_outcome::Outcome::Error(error) = outcome else { panic!("{outcome:?}") };
    assert_eq!(error.error_type, "ConditionalCheckFailedException");
    let items = machine.family(Family::Items);
    assert_eq!(items.len(), 1);
    let item: StoredItem = engine::decode("item", &items[0].1).unwrap();
    assert_eq!(item.attributes.get("val"), Some(&s("v1")));
    let events: Vec<String> = stream(&machine).into_iter().map(|(_, r)| r.event_name).collect();
    assert_eq!(events, vec!["INSERT".to_string()], "the refused put writes no record");
}

#[test]
fn the_clock_rises_in_log_order_and_follows_replicated_writes() {
    let mut machine = Machine::new(Memory::new());
    machine.ok(create_table(false));
    let before = machine.applier.clock();
    assert_eq!(before, 1_000_001);
    make_global(&mut machine, &["a"]);
    machine.ok(replicated(&(1, 9_000_000, 0, Some(1)), None));
    assert_eq!(machine.applier.clock(), 9_000_000, "raised to the replicated timestamp");
    machine.ok(user_write(2, Some(1)));
    assert_eq!(machine.applier.clock(), 9_000_001, "a later local write wins over the replicated one");
    assert_eq!(crate::apply::clock(&machine.engine).unwrap(), 9_000_001, "the clock is replicated state");
}

/// A view whose every read fails, as a failing disk would.
struct FailingDisk;

impl ReadView for FailingDisk {
    fn get(&self, _: Family, _: &[u8]) -> Result<Option<Vec<u8>>, engine::StorageError> {
        Err(engine::StorageError::Engine("I/O error".into()))
    }

    fn scan<'a>(&'a self, _: Family, _: &[u8], _: Option<&[u8]>, _: Direction) -> engine::Scan<'a> {
        Box::new(std::iter::once(Err(engine::StorageError::Engine("I/O error".into()))))
    }
}

#[test]
fn a_storage_failure_stops_the_apply_instead_of_becoming_an_outcome() {
    let mut machine = Machine::new(Memory::new());
    machine.ok(create_table(false));
    let command = Command { op: Some(user_write(1, Some(1))), proposed_at_micros: 2_000_000, ..Default::default() };
    let failure = machine.applier.apply(&mut Overlay::new(&FailingDisk), 2, command).unwrap_err();
    assert_eq!(failure, engine::StorageError::Engine("I/O error".into()));
}

fn trim(stream_id: u64, through: Seq) -> command::Op {
    command::Op::TrimStreams(tern_proto::internal::TrimStreams {
        trims: vec![tern_proto::internal::StreamTrim { stream_id, through: through.number() }],
    })
}

fn stream_definition(machine: &Machine<impl Engine + ReadView>) -> tern_proto::internal::StoredStream {
    crate::stream::read_stream(&machine.engine, 1).unwrap().expect("the table's stream")
}

#[test]
fn a_trim_is_replicated_state_that_every_node_applies_alike() {
    let mut nodes = [Machine::new(Memory::new()), Machine::new(Memory::new())];
    for node in &mut nodes {
        node.ok(create_table(true)); // Entry 1: stream 1.
        for key in 0..5 {
            node.ok(user_write(key, Some(1))); // Entries 2 to 6: one record each.
        }
        // Through entry 4's record; a later trim asking for less moves nothing; one asking past the
        // entry that carries it keeps what is not written yet out of reach.
        node.ok(trim(1, Seq::first_of(4)));
        node.ok(trim(1, Seq::first_of(3)));
    }
    let [first, second] = &nodes;
    assert_eq!(first.family(Family::Streams), second.family(Family::Streams), "the same horizon on every node");
    assert_eq!(first.family(Family::StreamRecords), second.family(Family::StreamRecords));
    let positions: Vec<Seq> = stream(first).into_iter().map(|(seq, _)| seq).collect();
    assert_eq!(positions, vec![Seq::first_of(5), Seq::first_of(6)]);
    let definition = stream_definition(first);
    assert_eq!(definition.trimmed_through, Seq::first_of(4).number());
    let refused = crate::stream::check_not_trimmed(&definition, Seq::first_of(3)).unwrap_err();
    assert_eq!(refused.kind, tern_proto::ErrorKind::TrimmedDataAccessException);
    assert!(crate::stream::check_not_trimmed(&definition, Seq::first_of(5)).is_ok());

    let mut node = Machine::new(Memory::new());
    node.ok(create_table(true));
    node.ok(user_write(0, Some(1))); // Entry 2.
    node.ok(trim(1, Seq::last_of(99))); // Entry 3 trims at most what entries before it wrote.
    assert_eq!(stream_definition(&node).trimmed_through, Seq::last_of(2).number());
    // Disabling a stream whose records are all trimmed ends it at its horizon, on every node alike.
    node.ok(command::Op::UpdateTable(v1::UpdateTableRequest {
        table_name: "things".into(),
        stream_specification: Some(v1::StreamSpecification { stream_enabled: false, ..Default::default() }),
        ..Default::default()
    }));
    assert_eq!(stream_definition(&node).last_sequence, Seq::last_of(2).number());
}

#[test]
fn a_global_tables_delete_of_an_absent_item_leaves_a_tombstone_and_a_record() {
    let mut node = Machine::new(Memory::new());
    node.ok(create_table(true));
    node.ok(user_write(1, None)); // A regional table: nothing at all.
    assert!(stream(&node).is_empty());
    assert!(tombstones(&node).is_empty());
    make_global(&mut node, &["a"]);
    let outcome = node.ok(user_write(1, None));
    let command_outcome::Outcome::DeleteItem(response) = outcome else { panic!("{outcome:?}") };
    let version = response.item_version.expect("a delete's version");
    assert_eq!(tombstones(&node), BTreeSet::from([(1, version.write_timestamp_micros)]));
    let records = stream(&node);
    assert_eq!(records.len(), 1);
    let data = records[0].1.dynamodb.clone().unwrap();
    assert_eq!(records[0].1.event_name, "REMOVE");
    assert_eq!(data.keys.unwrap().attributes, key_attributes(1));
    assert_eq!((data.item_version, data.old_image), (Some(version.clone()), None));
    // An older write of the item from another region does not bring it back.
    let older = (1, version.write_timestamp_micros - 1, 0, Some(7));
    let outcome = node.ok(replicated(&older, None));
    let command_outcome::Outcome::ApplyReplicated(applied) = outcome else { panic!("{outcome:?}") };
    assert_eq!((applied.applied, applied.skipped), (0, 1));
    assert!(node.family(Family::Items).is_empty());
}

/// Turning TTL on indexes a large table a batch per entry: the first batch in the UpdateTimeToLive
/// entry, the rest in the sweeper's IndexExpiries entries, each from where the last stopped, until one
/// reaches the last item; an item written meanwhile is indexed by its write. No entry scans the table.
#[test]
fn turning_ttl_on_indexes_a_large_table_a_batch_per_entry() {
    use tern_proto::internal::IndexExpiries;

    let mut machine = Machine::new(Memory::new());
    machine.ok(create_table(false));
    let batch = crate::ttl::INDEX_BATCH as usize;
    let total = 2 * batch + 10;
    let item = |name: String, expiring: bool| {
        let mut attributes = BTreeMap::from([("pk".to_string(), s(name))]);
        if expiring {
            attributes.insert("exp".into(), v1::AttributeValue { value: Some(Value::N("4000000000".into())) });
        }
        command::Op::PutItem(v1::PutItemRequest { table_name: "things".into(), item: attributes, ..Default::default() })
    };
    for i in 0..total {
        machine.ok(item(format!("k{i:06}"), i % 2 == 0));
    }
    let spec = v1::TimeToLiveSpecification { enabled: true, attribute_name: "exp".into(), ..Default::default() };
    machine.ok(command::Op::UpdateTimeToLive(v1::UpdateTimeToLiveRequest {
        table_name: "things".into(),
        time_to_live_specification: Some(spec),
    }));
    // The first batch: the first items in storage-key order (a hash of the key leads it).
    let expiring_in_first_batch = machine.family(Family::Items)[..batch]
        .iter()
        .filter(|(_, value)| engine::decode::<StoredItem>("item", value).unwrap().attributes.contains_key("exp"))
        .count();
    assert_eq!(
        machine.family(Family::TtlIndex).len(),
        expiring_in_first_batch,
        "the first batch, in the UpdateTimeToLive entry"
    );
    machine.ok(item("k999999".into(), true));
    assert_eq!(machine.family(Family::TtlIndex).len(), expiring_in_first_batch + 1, "a write meanwhile indexes itself");
    let mut rounds = Vec::new();
    for _ in 0..4 {
        let outcome =
            machine.ok(command::Op::IndexExpiries(IndexExpiries { table_name: "things".into(), limit: batch as u32 }));
        let command_outcome::Outcome::IndexExpiries(outcome) = outcome else { panic!("{outcome:?}") };
        rounds.push((outcome.items, outcome.done));
    }
    // The second batch ends the indexing: the last 10 items, and the one written meanwhile when its key
    // falls after the cursor (before it, its write indexed it).
    assert_eq!(rounds[0], (batch as u32, false));
    assert!(matches!(rounds[1], (10 | 11, true)), "{rounds:?}");
    assert_eq!(rounds[2..], [(0, true), (0, true)]);
    assert_eq!(machine.family(Family::TtlIndex).len(), total.div_ceil(2) + 1, "every expiring item, once");
}

/// A table's replica-update lock: taken when free or the caller's own, refused to another token with
/// ResourceInUseException, released only by its holder.
#[test]
fn the_replica_update_lock_has_one_holder() {
    let mut machine = Machine::new(Memory::new());
    machine.ok(create_table(false));
    let lock = |token: &str, release: bool| {
        command::Op::LockReplicaUpdate(v1::LockReplicaUpdateRequest {
            table_name: "things".into(),
            owner_region: format!("region-{token}"),
            token: token.into(),
            release,
            lease_millis: 600_000,
        })
    };
    let refused = |outcome: command_outcome::Outcome| match outcome {
        command_outcome::Outcome::Error(e) => e.error_type == "ResourceInUseException",
        _ => false,
    };
    machine.ok(lock("a", false));
    machine.ok(lock("a", false)); // its own: taken again
    assert!(refused(machine.run(lock("b", false))), "another update is refused");
    machine.ok(lock("b", true)); // not the holder: nothing released
    assert!(refused(machine.run(lock("b", false))), "still held by a");
    machine.ok(lock("a", true));
    machine.ok(lock("b", false));
    assert!(refused(machine.run(lock("a", false))), "now b holds it");
}
