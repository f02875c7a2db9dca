//! Backups in the apply path: the PITR log in step with changes and trimmed by the archiver's
//! progress, a restore's items written twice (a new leader starts over) counted once, a table being
//! restored refusing writes, a failed restore leaving no table, and a deleted table's system backup.

use prost::Message;
use tern_proto::internal::{
    command, command_outcome, EncodedImageEntry, PitrProgress, RestoreDone, RestoreItems, RestoreSource, RestoreTable,
    StoredItem, StoredTable,
};
use tern_proto::v1::{self, PointInTimeRecoverySpecification, UpdateContinuousBackupsRequest};

use super::{create_table, key_attributes, s, Machine};
use crate::backup::view::{list_backups, read_backup};
use crate::engine::{self, Memory, ReadView};
use crate::keyspace::{self, Family};
use crate::schema::TableSchema;

fn pitr(enabled: bool) -> command::Op {
    command::Op::UpdateContinuousBackups(UpdateContinuousBackupsRequest {
        table_name: "things".into(),
        point_in_time_recovery_specification: Some(PointInTimeRecoverySpecification {
            point_in_time_recovery_enabled: enabled,
            recovery_period_in_days: 0,
        }),
    })
}

fn put(key: u8, value: &str) -> command::Op {
    let mut item = key_attributes(key);
    item.insert("val".into(), s(value));
    command::Op::PutItem(v1::PutItemRequest { table_name: "things".into(), item, ..Default::default() })
}

fn delete(key: u8) -> command::Op {
    command::Op::DeleteItem(v1::DeleteItemRequest {
        table_name: "things".into(),
        key: key_attributes(key),
        ..Default::default()
    })
}

fn stored(machine: &Machine<Memory>, name: &str) -> Option<StoredTable> {
    machine.engine.get(Family::Tables, keyspace::table_key(name)).unwrap().map(|b| engine::decode("table", &b).unwrap())
}

/// The PITR log: (time, item key within the table, the item's `val`, none for a delete).
fn log(machine: &Machine<Memory>) -> Vec<(u64, Vec<u8>, Option<String>)> {
    machine
        .family(Family::PitrLog)
        .into_iter()
        .map(|(key, value)| {
            let (at, item_key) = keyspace::parse_pitr_key(&key).unwrap();
            let item = (!value.is_empty()).then(|| engine::decode::<StoredItem>("item", &value).unwrap());
            let val = item.map(|i| match i.attributes["val"].value.clone() {
                Some(v1::attribute_value::Value::S(v)) => v,
                other => panic!("{other:?}"),
            });
            (at, item_key.to_vec(), val)
        })
        .collect()
}

fn item_key(machine: &Machine<Memory>, key: u8) -> Vec<u8> {
    let schema = TableSchema::of(&stored(machine, "things").unwrap()).unwrap();
    schema.storage_key(&key_attributes(key)).unwrap()[8..].to_vec()
}

#[test]
fn the_pitr_log_follows_every_change_and_the_archiver_trims_it() {
    let mut machine = Machine::new(Memory::new());
    machine.ok(create_table(false));
    machine.ok(put(1, "before"));
    assert!(log(&machine).is_empty(), "no log before PITR is on");
    machine.ok(pitr(true));
    let pitr_state = stored(&machine, "things").unwrap().pitr.unwrap();
    assert!(
        pitr_state.enabled
            && pitr_state.recovery_period_days == 35
            && pitr_state.store_prefix.starts_with("pitr/here/things/")
    );
    let first = machine.ok(put(1, "one"));
    let at = |outcome: &command_outcome::Outcome| match outcome {
        command_outcome::Outcome::PutItem(r) => r.item_version.as_ref().unwrap().write_timestamp_micros,
        command_outcome::Outcome::DeleteItem(r) => r.item_version.as_ref().unwrap().write_timestamp_micros,
        other => panic!("{other:?}"),
    };
    let second = machine.ok(put(2, "two"));
    let third = machine.ok(delete(1));
    let (k1, k2) = (item_key(&machine, 1), item_key(&machine, 2));
    assert_eq!(
        log(&machine),
        vec![
            (at(&first), k1.clone(), Some("one".into())),
            (at(&second), k2, Some("two".into())),
            (at(&third), k1.clone(), None)
        ]
    );
    // Archived through the second change: the first two leave the log; a stale prefix changes nothing.
    let progress = |prefix: &str, through| {
        command::Op::PitrProgress(PitrProgress {
            table_name: "things".into(),
            store_prefix: prefix.into(),
            archived_through_micros: through,
            ..Default::default()
        })
    };
    machine.ok(progress("pitr/elsewhere", at(&third)));
    assert_eq!(log(&machine).len(), 3);
    machine.ok(progress(&pitr_state.store_prefix, at(&second)));
    assert_eq!(log(&machine), vec![(at(&third), k1, None)]);
    assert_eq!(stored(&machine, "things").unwrap().pitr.unwrap().archived_through_micros, at(&second));
    // Off: the log is dropped and no longer kept.
    machine.ok(pitr(false));
    machine.ok(put(3, "three"));
    assert!(log(&machine).is_empty() && stored(&machine, "things").unwrap().pitr.is_none());
    // Bad periods are refused.
    let refused = machine.run(command::Op::UpdateContinuousBackups(UpdateContinuousBackupsRequest {
        table_name: "things".into(),
        point_in_time_recovery_specification: Some(PointInTimeRecoverySpecification {
            point_in_time_recovery_enabled: true,
            recovery_period_in_days: 36,
        }),
    }));
    assert!(matches!(refused, command_outcome::Outcome::Error(e) if e.error_type == "ValidationException"));
}

fn restore_table(name: &str) -> command::Op {
    let command::Op::CreateTable(mut table) = create_table(false) else { unreachable!() };
    table.table_name = name.into();
    command::Op::RestoreTable(RestoreTable {
        table: Some(table),
        source: Some(RestoreSource { backup_id: "01700000000000-00000001".into(), ..Default::default() }),
        summary: Some(v1::RestoreSummary { source_backup_arn: "arn".into(), ..Default::default() }),
    })
}

#[test]
fn a_restore_written_twice_counts_each_item_once_and_its_table_serves_only_when_active() {
    let mut machine = Machine::new(Memory::new());
    machine.ok(create_table(false));
    let keys: Vec<Vec<u8>> = (0..3).map(|k| item_key(&machine, k)).collect();
    let created = machine.ok(restore_table("copy"));
    let command_outcome::Outcome::Restore(description) = created else { panic!("{created:?}") };
    assert_eq!(description.table_status, "CREATING");
    assert!(description.restore_summary.unwrap().restore_in_progress);
    let table_id = stored(&machine, "copy").unwrap().table_id;
    let items = |range: std::ops::Range<usize>| RestoreItems {
        table_id,
        table_name: "copy".into(),
        items: range
            .map(|n| EncodedImageEntry {
                key: keys[n].clone(),
                item: StoredItem { attributes: key_attributes(n as u8), ..Default::default() }.encode_to_vec(),
            })
            .collect(),
        bytes_read: 10,
        ..Default::default()
    };
    // A batch of an earlier restore under the name (another table id) is refused.
    let stale = machine.run(command::Op::RestoreItems(RestoreItems { table_id: table_id - 1, ..items(0..1) }));
    assert!(matches!(&stale, command_outcome::Outcome::Error(e) if e.error_type == "ValidationException"), "{stale:?}");
    machine.ok(command::Op::RestoreItems(items(0..2)));
    // A new leader starts over: the same items again, then the rest.
    machine.ok(command::Op::RestoreItems(items(0..2)));
    let outcome = machine.ok(command::Op::RestoreItems(items(0..3)));
    let command_outcome::Outcome::Restore(description) = outcome else { panic!("{outcome:?}") };
    assert_eq!((description.item_count, description.restore_summary.unwrap().items_restored), (3, 3));
    // A key twice in one batch (an import's duplicate) is one item; each is stored with the entry's version.
    let mut twice = items(1..2);
    twice.items.push(twice.items[0].clone());
    let outcome = machine.ok(command::Op::RestoreItems(twice));
    let command_outcome::Outcome::Restore(description) = outcome else { panic!("{outcome:?}") };
    assert_eq!(description.item_count, 3);
    let key = [keyspace::table_prefix(table_id).as_slice(), keys[1].as_slice()].concat();
    let stored_item: StoredItem =
        engine::decode("item", &machine.engine.get(Family::Items, &key).unwrap().unwrap()).unwrap();
    assert_eq!(stored_item.attributes, key_attributes(1));
    assert!(stored_item.write_timestamp_micros > 0 && !stored_item.origin_region.is_empty(), "{stored_item:?}");
    // Users' writes wait until it is ACTIVE.
    let mut write = put(9, "early");
    if let command::Op::PutItem(r) = &mut write {
        r.table_name = "copy".into();
    }
    let refused = machine.run(write.clone());
    assert!(
        matches!(&refused, command_outcome::Outcome::Error(e) if e.error_type == "ResourceNotFoundException"),
        "{refused:?}"
    );
    let refused = machine.run(command::Op::DeleteTable(v1::DeleteTableRequest { table_name: "copy".into() }));
    assert!(
        matches!(&refused, command_outcome::Outcome::Error(e) if e.error_type == "ResourceInUseException"),
        "{refused:?}"
    );
    let stale = RestoreDone {
        table_name: "copy".into(),
        error: "an old leader's failure".into(),
        table_id: table_id - 1,
        ..Default::default()
    };
    machine.ok(command::Op::RestoreDone(stale));
    assert!(stored(&machine, "copy").unwrap().restoring.is_some(), "an earlier restore's end changes nothing");
    let done =
        machine.ok(command::Op::RestoreDone(RestoreDone { table_name: "copy".into(), table_id, ..Default::default() }));
    let command_outcome::Outcome::Restore(description) = done else { panic!("{done:?}") };
    assert_eq!((description.table_status.as_str(), description.item_count), ("ACTIVE", 3));
    assert!(!description.restore_summary.unwrap().restore_in_progress);
    machine.ok(write);
    // Items of a restore that is over are refused: a late batch from an old leader changes nothing.
    let late = machine.run(command::Op::RestoreItems(items(0..1)));
    assert!(matches!(&late, command_outcome::Outcome::Error(e) if e.error_type == "ValidationException"), "{late:?}");
    // A taken name.
    let taken = machine.run(restore_table("copy"));
    assert!(
        matches!(&taken, command_outcome::Outcome::Error(e) if e.error_type == "TableAlreadyExistsException"),
        "{taken:?}"
    );
}

#[test]
fn a_failed_restore_leaves_no_table_and_says_why() {
    let mut machine = Machine::new(Memory::new());
    machine.ok(create_table(false));
    let key = item_key(&machine, 1);
    machine.ok(restore_table("broken"));
    let table_id = stored(&machine, "broken").unwrap().table_id;
    machine.ok(command::Op::RestoreItems(RestoreItems {
        table_id,
        table_name: "broken".into(),
        items: vec![EncodedImageEntry {
            key,
            item: StoredItem { attributes: key_attributes(1), ..Default::default() }.encode_to_vec(),
        }],
        bytes_read: 1,
        ..Default::default()
    }));
    let why = "backup file backups/x/part-00000.bin is damaged";
    machine.ok(command::Op::RestoreDone(RestoreDone {
        table_name: "broken".into(),
        error: why.into(),
        table_id,
        ..Default::default()
    }));
    assert!(stored(&machine, "broken").is_none());
    let failure = |m: &Machine<Memory>| m.engine.get(Family::Meta, &keyspace::restore_failure_key("broken")).unwrap();
    assert_eq!(failure(&machine).as_deref(), Some(why.as_bytes()));
    let (start, end) = keyspace::table_range(table_id);
    assert_eq!(machine.engine.scan(Family::Items, &start, Some(&end), engine::Direction::Forward).count(), 0);
    // A restore under the name again clears the failure.
    machine.ok(restore_table("broken"));
    assert_eq!(failure(&machine), None);
}

#[test]
fn a_table_deleted_with_pitr_on_leaves_a_system_backup_and_its_log_until_archived() {
    let mut machine = Machine::new(Memory::new());
    machine.ok(create_table(false));
    machine.ok(pitr(true));
    machine.ok(put(1, "one"));
    machine.ok(command::Op::DeleteTable(v1::DeleteTableRequest { table_name: "things".into() }));
    let backups = list_backups(&machine.engine).unwrap();
    assert_eq!(backups.len(), 1);
    let details = backups[0].description.clone().unwrap().backup_details.unwrap();
    assert_eq!(
        (details.backup_name.as_str(), details.backup_type.as_str(), details.backup_status.as_str()),
        ("things$DeletedTableBackup", "SYSTEM", "CREATING")
    );
    assert_eq!(log(&machine).len(), 1, "the log not yet archived stays for the backup");
    let id = crate::backup::backup_id_of(&details.backup_arn).unwrap().to_string();
    let deleting = machine.run(command::Op::DeleteBackup(tern_proto::internal::DeleteBackup { backup_id: id.clone() }));
    assert!(
        matches!(&deleting, command_outcome::Outcome::Error(e) if e.error_type == "BackupInUseException"),
        "{deleting:?}"
    );
    machine.ok(command::Op::PitrProgress(PitrProgress {
        system_backup_id: id.clone(),
        archived_through_micros: backups[0].deleted_at_micros,
        ..Default::default()
    }));
    let backup = read_backup(&machine.engine, &id).unwrap().unwrap();
    assert_eq!(backup.description.unwrap().backup_details.unwrap().backup_status, "AVAILABLE");
    assert!(log(&machine).is_empty(), "archived: the log is dropped");
    machine.ok(command::Op::DeleteBackup(tern_proto::internal::DeleteBackup { backup_id: id }));
    assert!(list_backups(&machine.engine).unwrap().is_empty());
}
