//! Point-in-time recovery and on-demand backups with real processes: restores to chosen times of a
//! minute's history of puts, updates and deletes, each equal to the history at that time item for
//! item; a deleted table restored from its system backup; a backup restored in another region that
//! shares the store; the leader killed during a backup and during a restore; damaged and missing
//! files refused; the window's errors; and a store served by an S3-protocol server (moto).

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ::tern_client::v1::*;
use ::tern_client::Client;
use serde_json::Value as Json;
use tern_tests::dynamo::{create_table, error, wire};
use tern_tests::pitr::{describe_pitr, enable_pitr, files, load, scan, State};
use tern_tests::{free_addresses, Region};

/// Nodes that upload their PITR log every 300 ms (a minute by default).
const FAST_ARCHIVE: &[&str] = &["--pitr-archive-interval-ms", "300"];

const RESTORE_TIMEOUT: Duration = Duration::from_secs(120);

fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as u64
}

/// A small deterministic generator (xorshift), so that a failing history can be replayed.
struct Draw(u64);

impl Draw {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

/// Restores `source` as it was at `at` (microseconds) into `target`, waits, and scans it.
async fn restore_to(client: &Client, source: &str, target: &str, at: u64) -> anyhow::Result<State> {
    let restored = client
        .restore_table_to_point_in_time(RestoreTableToPointInTimeRequest {
            source_table_name: source.into(),
            target_table_name: target.into(),
            restore_date_time: Some(at as f64 / 1e6),
            ..Default::default()
        })
        .await?;
    let table = restored.table_description.unwrap();
    assert_eq!(table.table_name, target);
    assert!(table.restore_summary.as_ref().is_some_and(|s| s.restore_date_time == at as f64 / 1e6));
    client.wait_for_restore(target, RESTORE_TIMEOUT, |_| {}).await?;
    scan(client, target).await
}

async fn put(client: &Client, table: &str, pk: &str, n: u64) -> anyhow::Result<(u64, Json)> {
    let text = format!(
        r#"{{"pk":{{"S":"{pk}"}},"v":{{"N":"{n}"}},"pad":{{"S":"{}"}},"tags":{{"SS":["a","b{n}"]}}}}"#,
        "x".repeat((n % 50) as usize)
    );
    let response = client
        .put_item_request(PutItemRequest { table_name: table.into(), item: wire(&text), ..Default::default() })
        .await?;
    Ok((response.item_version.unwrap().write_timestamp_micros, serde_json::from_str(&text)?))
}

fn key(pk: &str) -> BTreeMap<String, AttributeValue> {
    wire(&format!(r#"{{"pk":{{"S":"{pk}"}}}}"#))
}

/// Writes a history of puts, updates and deletes over `span`, one at a time; returns each write's
/// commit time (its version) and the table's state after it.
async fn write_history(client: &Client, table: &str, span: Duration, seed: u64) -> anyhow::Result<Vec<(u64, State)>> {
    let mut draw = Draw(seed);
    let mut state = State::new();
    let mut history = Vec::new();
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < span {
        n += 1;
        let pk = format!("k{:02}", draw.next(40));
        let at = match draw.next(10) {
            0..=5 => {
                let (at, item) = put(client, table, &pk, n).await?;
                state.insert(pk, item);
                at
            }
            6..=7 => {
                let response = client
                    .update_item(UpdateItemRequest {
                        table_name: table.into(),
                        key: key(&pk),
                        update_expression: "SET v = :v, u = :u".into(),
                        expression_attribute_values: wire(&format!(r#"{{":v":{{"N":"{n}"}},":u":{{"S":"updated"}}}}"#)),
                        ..Default::default()
                    })
                    .await?;
                let item = state.entry(pk.clone()).or_insert_with(|| serde_json::json!({"pk": {"S": pk}}));
                item["v"] = serde_json::json!({"N": n.to_string()});
                item["u"] = serde_json::json!({"S": "updated"});
                response.item_version.unwrap().write_timestamp_micros
            }
            _ => {
                let response = client
                    .delete_item_request(DeleteItemRequest {
                        table_name: table.into(),
                        key: key(&pk),
                        ..Default::default()
                    })
                    .await?;
                state.remove(&pk);
                response.item_version.unwrap().write_timestamp_micros
            }
        };
        if let Some((previous, _)) = history.last() {
            assert!(at > *previous, "commit times rise with each acknowledged write");
        }
        history.push((at, state.clone()));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(history)
}

fn api_error<T: std::fmt::Debug>(result: Result<T, ::tern_client::Error>) -> (String, String) {
    error(result)
}

#[tokio::test(flavor = "multi_thread")]
async fn restores_to_chosen_times_equal_the_history_at_those_times() -> anyhow::Result<()> {
    let region = Region::start(3, FAST_ARCHIVE).await?;
    let client = region.client().await?;
    create_table(&client, "history", "pk:S", None).await?;
    create_table(&client, "plain", "pk:S", None).await?;
    let enabled = enable_pitr(&client, "history").await?;
    let history = write_history(&client, "history", Duration::from_secs(60), 0x5eed).await?;
    assert!(history.len() > 500, "a minute of writes: {}", history.len());
    let segments = files(&region.dir().join("backups"), ".log");
    assert!(segments.len() > 10, "the log was archived in segments as it was written: {segments:?}");

    // Restore points across the minute: at a write's commit time (it is in), just before it (it is
    // not), between writes, and the latest.
    let picks = [history.len() / 10, history.len() * 4 / 10, history.len() * 7 / 10, history.len() - 1];
    for (n, &i) in picks.iter().enumerate() {
        let (at, expected) = &history[i];
        let restored = restore_to(&client, "history", &format!("at-{n}"), *at).await?;
        assert_eq!(&restored, expected, "restored to the commit time of write {i}");
        let (_, before) = &history[i - 1];
        let restored = restore_to(&client, "history", &format!("before-{n}"), at - 1).await?;
        assert_eq!(&restored, before, "restored to just before write {i}");
    }
    let restored = client
        .restore_table_to_point_in_time(RestoreTableToPointInTimeRequest {
            source_table_name: "history".into(),
            target_table_name: "latest".into(),
            use_latest_restorable_time: true,
            ..Default::default()
        })
        .await?;
    assert!(restored.table_description.unwrap().restore_summary.unwrap().restore_in_progress);
    let table = client.wait_for_restore("latest", RESTORE_TIMEOUT, |_| {}).await?;
    assert_eq!(&scan(&client, "latest").await?, &history.last().unwrap().1, "restored to the latest time");

    // The restored table: the source's key schema, ACTIVE, where it came from; streams, TTL and PITR off.
    let source = client.describe_table(DescribeTableRequest { table_name: "history".into() }).await?.table.unwrap();
    assert_eq!((table.table_status.as_str(), &table.key_schema), ("ACTIVE", &source.key_schema));
    assert_eq!(table.attribute_definitions, source.attribute_definitions);
    let summary = table.restore_summary.unwrap();
    assert_eq!((summary.source_table_arn.as_str(), summary.restore_in_progress), (source.table_arn.as_str(), false));
    assert_eq!(summary.items_restored, history.last().unwrap().1.len() as u64);
    assert_eq!(table.item_count, history.last().unwrap().1.len() as u64);
    assert!(table.stream_specification.is_none() && table.latest_stream_arn.is_empty());
    assert_eq!(describe_pitr(&client, "latest").await?.point_in_time_recovery_status, "DISABLED");
    let ttl = client.describe_time_to_live(DescribeTimeToLiveRequest { table_name: "latest".into() }).await?;
    assert_eq!(ttl.time_to_live_description.unwrap().time_to_live_status, "DISABLED");

    // The window: before its start, in the future, a table without PITR, a taken name, no source.
    let pitr = describe_pitr(&client, "history").await?;
    assert_eq!(pitr.earliest_restorable_date_time, enabled.earliest_restorable_date_time);
    assert!(pitr.latest_restorable_date_time * 1e6 >= history.last().unwrap().0 as f64);
    let early = (pitr.earliest_restorable_date_time * 1e6) as u64 - 1_000_000;
    let (name, _) = api_error(restore_to(&client, "history", "too-early", early).await.map_err(to_client_error));
    assert_eq!(name, "InvalidRestoreTimeException");
    let (name, _) =
        api_error(restore_to(&client, "history", "future", now_micros() + 60_000_000).await.map_err(to_client_error));
    assert_eq!(name, "InvalidRestoreTimeException");
    let (name, _) = api_error(restore_to(&client, "plain", "from-plain", now_micros()).await.map_err(to_client_error));
    assert_eq!(name, "PointInTimeRecoveryUnavailableException");
    let (name, _) =
        api_error(restore_to(&client, "history", "latest", now_micros() - 1_000_000).await.map_err(to_client_error));
    assert_eq!(name, "TableAlreadyExistsException");
    let (name, _) =
        api_error(restore_to(&client, "nothing", "from-nothing", now_micros()).await.map_err(to_client_error));
    assert_eq!(name, "TableNotFoundException");
    let both = client
        .restore_table_to_point_in_time(RestoreTableToPointInTimeRequest {
            source_table_name: "history".into(),
            target_table_name: "both".into(),
            use_latest_restorable_time: true,
            restore_date_time: Some(now_micros() as f64 / 1e6),
            ..Default::default()
        })
        .await;
    assert_eq!(api_error(both).0, "ValidationException");

    // The period: 1 to 35 days; lowering it keeps the window within it at once (here the minute is
    // inside a day either way); turning PITR off closes the window.
    let set_period = |days: u32, enabled: bool| {
        let client = client.clone();
        async move {
            let spec = PointInTimeRecoverySpecification {
                point_in_time_recovery_enabled: enabled,
                recovery_period_in_days: days,
            };
            client
                .update_continuous_backups(UpdateContinuousBackupsRequest {
                    table_name: "history".into(),
                    point_in_time_recovery_specification: Some(spec),
                })
                .await
        }
    };
    assert_eq!(api_error(set_period(36, true).await).0, "ValidationException");
    let lowered = set_period(1, true).await?.continuous_backups_description.unwrap();
    let lowered = lowered.point_in_time_recovery_description.unwrap();
    assert_eq!(
        (lowered.recovery_period_in_days, lowered.earliest_restorable_date_time),
        (1, enabled.earliest_restorable_date_time)
    );
    set_period(0, false).await?;
    let off = describe_pitr(&client, "history").await?;
    assert_eq!((off.point_in_time_recovery_status.as_str(), off.earliest_restorable_date_time), ("DISABLED", 0.0));
    let (name, _) = api_error(restore_to(&client, "history", "after-off", now_micros()).await.map_err(to_client_error));
    assert_eq!(name, "PointInTimeRecoveryUnavailableException");
    Ok(())
}

/// The client error inside an anyhow error (what `restore_to` returns on a refusal).
fn to_client_error(e: anyhow::Error) -> ::tern_client::Error {
    match e.downcast::<::tern_client::Error>() {
        Ok(e) => e,
        Err(other) => panic!("expected a DynamoDB error, got {other:#}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_deleted_with_pitr_on_is_restored_from_its_system_backup() -> anyhow::Result<()> {
    let region = Region::start(3, FAST_ARCHIVE).await?;
    let client = region.client().await?;
    create_table(&client, "doomed", "pk:S", None).await?;
    enable_pitr(&client, "doomed").await?;
    let history = write_history(&client, "doomed", Duration::from_secs(3), 7).await?;
    let expected = history.last().unwrap().1.clone();
    let deleted = client.delete_table(DeleteTableRequest { table_name: "doomed".into() }).await?;
    assert_eq!(deleted.table_description.unwrap().table_status, "DELETING");

    let listed = client.list_backups(ListBackupsRequest { backup_type: "SYSTEM".into(), ..Default::default() }).await?;
    assert_eq!(listed.backup_summaries.len(), 1, "{listed:?}");
    let summary = &listed.backup_summaries[0];
    assert_eq!(
        (summary.backup_name.as_str(), summary.table_name.as_str(), summary.backup_type.as_str()),
        ("doomed$DeletedTableBackup", "doomed", "SYSTEM")
    );
    let expiry = summary.backup_expiry_date_time - summary.backup_creation_date_time;
    assert!((expiry - 35.0 * 86_400.0).abs() < 1.0, "kept for the recovery period: {expiry} s");
    let users = client.list_backups(ListBackupsRequest::default()).await?;
    assert!(users.backup_summaries.is_empty(), "ListBackups lists USER backups by default: {users:?}");
    let backup = client.wait_for_backup(&summary.backup_arn, Duration::from_secs(30)).await?;
    assert_eq!(backup.backup_details.unwrap().backup_status, "AVAILABLE");

    client
        .restore_table_from_backup(RestoreTableFromBackupRequest {
            target_table_name: "undoomed".into(),
            backup_arn: summary.backup_arn.clone(),
            ..Default::default()
        })
        .await?;
    let table = client.wait_for_restore("undoomed", RESTORE_TIMEOUT, |_| {}).await?;
    assert_eq!(scan(&client, "undoomed").await?, expected, "the table as it was when it was deleted");
    assert_eq!(table.restore_summary.unwrap().source_backup_arn, summary.backup_arn);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_made_in_one_region_is_restored_in_another() -> anyhow::Result<()> {
    let store = tempfile::tempdir()?;
    let url = format!("file://{}", store.path().display());
    let east = Region::start_named("us-east", free_addresses(3), &["--backup-store", &url]).await?;
    let west = Region::start_named("eu-west", free_addresses(3), &["--backup-store", &url]).await?;
    let (east_client, west_client) = (east.client().await?, west.client().await?);
    create_table(&east_client, "music", "pk:S", None).await?;
    let mut expected = State::new();
    for n in 0..50 {
        let (_, item) = put(&east_client, "music", &format!("song-{n:02}"), n).await?;
        expected.insert(format!("song-{n:02}"), item);
    }
    let created = east_client
        .create_backup(CreateBackupRequest { table_name: "music".into(), backup_name: "nightly".into() })
        .await?
        .backup_details
        .unwrap();
    assert_eq!((created.backup_name.as_str(), created.backup_type.as_str()), ("nightly", "USER"));
    assert!(created.backup_arn.starts_with("arn:tern:dynamodb:us-east:table/music/backup/0"), "{}", created.backup_arn);
    let available = east_client.wait_for_backup(&created.backup_arn, Duration::from_secs(30)).await?;
    let details = available.backup_details.unwrap();
    assert_eq!((details.backup_status.as_str(), details.item_count), ("AVAILABLE", 50));
    assert!(details.backup_size_bytes > 0);
    assert_eq!(available.source_table_details.unwrap().item_count, 50);
    // Writes after the backup are not in it.
    put(&east_client, "music", "song-late", 99).await?;
    let listed =
        east_client.list_backups(ListBackupsRequest { table_name: "music".into(), ..Default::default() }).await?;
    assert_eq!(
        listed.backup_summaries.iter().map(|s| s.backup_arn.as_str()).collect::<Vec<_>>(),
        vec![created.backup_arn.as_str()]
    );

    let described =
        west_client.describe_backup(DescribeBackupRequest { backup_arn: created.backup_arn.clone() }).await?;
    let described = described.backup_description.unwrap();
    assert_eq!(described.backup_details.unwrap().backup_status, "AVAILABLE");
    assert_eq!(described.source_table_details.unwrap().table_name, "music");
    west_client
        .restore_table_from_backup(RestoreTableFromBackupRequest {
            target_table_name: "music-copy".into(),
            backup_arn: created.backup_arn.clone(),
            ..Default::default()
        })
        .await?;
    let table = west_client.wait_for_restore("music-copy", RESTORE_TIMEOUT, |_| {}).await?;
    assert_eq!(scan(&west_client, "music-copy").await?, expected);
    assert!(table.table_arn.contains(":eu-west:"), "{}", table.table_arn);
    let taken = west_client
        .restore_table_from_backup(RestoreTableFromBackupRequest {
            target_table_name: "music-copy".into(),
            backup_arn: created.backup_arn.clone(),
            ..Default::default()
        })
        .await;
    assert_eq!(api_error(taken).0, "TableAlreadyExistsException");

    let deleted = east_client.delete_backup(DeleteBackupRequest { backup_arn: created.backup_arn.clone() }).await?;
    assert_eq!(deleted.backup_description.unwrap().backup_details.unwrap().backup_status, "DELETED");
    let again = east_client.delete_backup(DeleteBackupRequest { backup_arn: created.backup_arn.clone() }).await;
    assert_eq!(api_error(again).0, "BackupNotFoundException");
    let gone = west_client.describe_backup(DescribeBackupRequest { backup_arn: created.backup_arn.clone() }).await;
    assert_eq!(api_error(gone).0, "BackupNotFoundException");
    let bad_name =
        east_client.create_backup(CreateBackupRequest { table_name: "music".into(), backup_name: "a b".into() }).await;
    assert_eq!(api_error(bad_name).0, "ValidationException");
    let no_table = east_client
        .create_backup(CreateBackupRequest { table_name: "nothing".into(), backup_name: "nightly".into() })
        .await;
    assert_eq!(api_error(no_table).0, "TableNotFoundException");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_leader_killed_during_a_backup() -> anyhow::Result<()> {
    let mut region = Region::start(3, &[]).await?;
    let client = region.client().await?;
    create_table(&client, "big", "pk:S", None).await?;
    load(&client, "big", 20_000).await?;

    // The leader makes the backup's image on its next round (within half a second): killed as soon as
    // the call returns, it cannot have finished it, and the next leader makes it from the start.
    let leader = region.wait_for_leader(Duration::from_secs(10)).await?;
    let created = client
        .create_backup(CreateBackupRequest { table_name: "big".into(), backup_name: "before-kill".into() })
        .await?
        .backup_details
        .unwrap();
    region.kill(leader)?;
    let available = client.wait_for_backup(&created.backup_arn, Duration::from_secs(60)).await?;
    assert_eq!(available.backup_details.unwrap().item_count, 20_000, "the backup completed under the new leader");
    assert!(!region.log(leader).contains("backup available"), "the killed leader had not finished it");
    region.restart(leader)?;
    Ok(())
}

/// The leader killed during a restore: the next leader completes it, every item once. (The kill can
/// come before the followers applied the restore's new table: both then answer DescribeTable with
/// ResourceNotFoundException for a moment, which `wait_for_restore` waits through, as AWS's waiter does;
/// the client once asked the dead node again and again instead, until its deadline.)
#[tokio::test(flavor = "multi_thread")]
async fn the_leader_killed_during_a_restore() -> anyhow::Result<()> {
    let mut region = Region::start(3, &[]).await?;
    let client = region.client().await?;
    create_table(&client, "big", "pk:S", None).await?;
    let expected = load(&client, "big", 20_000).await?;
    let created = client
        .create_backup(CreateBackupRequest { table_name: "big".into(), backup_name: "to-restore".into() })
        .await?
        .backup_details
        .unwrap();
    client.wait_for_backup(&created.backup_arn, Duration::from_secs(60)).await?;
    client
        .restore_table_from_backup(RestoreTableFromBackupRequest {
            target_table_name: "big-restored".into(),
            backup_arn: created.backup_arn.clone(),
            ..Default::default()
        })
        .await?;
    // Killed once every node agrees on it (and so has the new table): during the restore, or just
    // after it when it was quicker than that.
    let leader = region.wait_for_leader(Duration::from_secs(20)).await?;
    region.kill(leader)?;
    let mut seen_progress = false;
    let table = client
        .wait_for_restore("big-restored", RESTORE_TIMEOUT, |t| {
            seen_progress |= t.restore_summary.as_ref().is_some_and(|s| s.items_restored > 0 && s.restore_in_progress);
        })
        .await?;
    assert_eq!(table.item_count, 20_000, "every item once, though the restore may have started over");
    assert_eq!(scan(&client, "big-restored").await?, expected);
    region.restart(leader)?;
    eprintln!("progress seen while restoring: {seen_progress}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn damaged_and_missing_backup_files_fail_the_restore_clearly() -> anyhow::Result<()> {
    let region = Region::start(3, FAST_ARCHIVE).await?;
    let client = region.client().await?;
    create_table(&client, "fragile", "pk:S", None).await?;
    load(&client, "fragile", 200).await?;
    let created = client
        .create_backup(CreateBackupRequest { table_name: "fragile".into(), backup_name: "fragile-1".into() })
        .await?
        .backup_details
        .unwrap();
    client.wait_for_backup(&created.backup_arn, Duration::from_secs(30)).await?;
    let id = created.backup_arn.rsplit('/').next().unwrap().to_string();
    let parts = files(&region.dir().join("backups/backups").join(&id), ".bin");
    assert_eq!(parts.len(), 1, "{parts:?}");
    let part = parts[0].clone();
    let mut bytes = std::fs::read(&part)?;
    bytes[100] ^= 0x01;
    std::fs::write(&part, &bytes)?;
    client
        .restore_table_from_backup(RestoreTableFromBackupRequest {
            target_table_name: "from-damaged".into(),
            backup_arn: created.backup_arn.clone(),
            ..Default::default()
        })
        .await?;
    let failed = client.wait_for_restore("from-damaged", RESTORE_TIMEOUT, |_| {}).await;
    if let Err(::tern_client::Error::Api(error)) = &failed {
        let why = error.details.as_ref().map(|d| d.restore_failure.clone()).unwrap_or_default();
        assert!(why.contains("-00000.bin is damaged: its SHA-256 is"), "the reason, as a detail of the error: {why:?}");
    }
    let (name, message) = api_error(failed);
    assert_eq!(name, "ResourceNotFoundException");
    assert!(message.contains("restore failed") && message.contains("-00000.bin is damaged"), "{message}");
    let tables = client.list_tables(ListTablesRequest::default()).await?;
    assert!(!tables.table_names.contains(&"from-damaged".to_string()), "no partial table is left: {tables:?}");

    // A PITR log with a segment missing.
    enable_pitr(&client, "fragile").await?;
    write_history(&client, "fragile", Duration::from_secs(3), 11).await?;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let segments = files(&region.dir().join("backups/pitr"), ".log");
    assert!(segments.len() >= 2, "{segments:?}");
    std::fs::remove_file(&segments[0])?;
    let failed = restore_to(&client, "fragile", "from-gap", now_micros() - 200_000).await;
    let message = format!("{:#}", failed.unwrap_err());
    assert!(message.contains("restore failed") && message.contains("segment is missing"), "{message}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn backups_and_restores_through_an_s3_protocol_server() -> anyhow::Result<()> {
    let s3 = tern_tests::s3::MotoServer::start()?;
    s3.create_bucket("tern-backups")?;
    let env = s3.client_env();
    let region = Region::start_with_env(
        3,
        &["--backup-store", "s3://tern-backups/region-1", "--pitr-archive-interval-ms", "300"],
        move |_| env.clone(),
    )
    .await?;
    let client = region.client().await?;
    create_table(&client, "remote", "pk:S", None).await?;
    enable_pitr(&client, "remote").await?;
    let history = write_history(&client, "remote", Duration::from_secs(5), 3).await?;
    let (at, expected) = &history[history.len() / 2];
    assert_eq!(&restore_to(&client, "remote", "remote-pitr", *at).await?, expected);

    let created = client
        .create_backup(CreateBackupRequest { table_name: "remote".into(), backup_name: "to-s3".into() })
        .await?
        .backup_details
        .unwrap();
    client.wait_for_backup(&created.backup_arn, Duration::from_secs(30)).await?;
    client
        .restore_table_from_backup(RestoreTableFromBackupRequest {
            target_table_name: "remote-copy".into(),
            backup_arn: created.backup_arn.clone(),
            ..Default::default()
        })
        .await?;
    client.wait_for_restore("remote-copy", RESTORE_TIMEOUT, |_| {}).await?;
    assert_eq!(scan(&client, "remote-copy").await?, scan(&client, "remote").await?);
    let keys = s3.list_keys("tern-backups")?;
    assert!(keys.iter().any(|k| k.starts_with("region-1/backups/") && k.ends_with("/manifest.json")), "{keys:?}");
    assert!(keys.iter().any(|k| k.starts_with("region-1/pitr/") && k.ends_with(".log")), "{keys:?}");
    assert!(files(&region.dir().join("backups"), "").is_empty(), "nothing went to the local default store");
    Ok(())
}
