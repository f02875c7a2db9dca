//! TransactWriteItems at apply time: every action's condition is checked against the same state, and
//! either all writes go into the entry's writes or none does. A ClientRequestToken makes a successful
//! transaction idempotent for ten minutes of log time.

use prost::Message;
use tern_proto::internal::{command_outcome, CommandOutcome, IdempotencyRecord};
use tern_proto::v1::{
    transact_write_item::Action, CancellationReason, ErrorDetails, ItemVersion, TransactWriteItemsRequest,
    TransactWriteItemsResponse,
};
use tern_proto::{ApiError, ErrorKind};

use super::commit::commit;
use super::entry::{Applied, ApplyError, Entry, PlannedWrite};
use super::items::{check_condition, plan_delete, plan_put, plan_update, Conditional};
use crate::engine::{self, Direction, StorageError};
use crate::keyspace::{self, Family};

/// How long a ClientRequestToken is remembered, in microseconds.
pub const IDEMPOTENCY_WINDOW_MICROS: u64 = 10 * 60 * 1_000_000;

fn reason(error: &ApiError) -> CancellationReason {
    match error.kind {
        ErrorKind::ConditionalCheckFailedException => CancellationReason {
            code: "ConditionalCheckFailed".into(),
            message: error.message.clone(),
            item: error.details.as_ref().and_then(|d| d.item.clone()),
        },
        _ => CancellationReason { code: "ValidationError".into(), message: error.message.clone(), item: None },
    }
}

/// Applies a transaction (or replays the outcome remembered for its token).
pub fn transact_write_items(
    entry: &mut Entry,
    r: TransactWriteItemsRequest,
    version: ItemVersion,
) -> Applied<command_outcome::Outcome> {
    let now = version.write_timestamp_micros;
    let token = r.client_request_token.clone();
    let request_hash = xxhash_rust::xxh3::xxh3_64(&r.encode_to_vec());
    if !token.is_empty() {
        forget_expired_tokens(entry, now)?;
        if let Some(record) = remembered(entry, &token)? {
            if record.applied_at_micros + IDEMPOTENCY_WINDOW_MICROS > now {
                if record.request_hash != request_hash {
                    return Err(ApiError::new(
                        ErrorKind::IdempotentParameterMismatchException,
                        "The ClientRequestToken was used with a different request within the last 10 minutes",
                    )
                    .into());
                }
                if let Some(outcome) = record.outcome.and_then(|o| o.outcome) {
                    return Ok(outcome);
                }
            }
        }
    }
    let outcome = command_outcome::Outcome::TransactWriteItems(run_transaction(entry, &r, &version)?);
    if !token.is_empty() {
        let record = IdempotencyRecord {
            request_hash,
            applied_at_micros: now,
            outcome: Some(CommandOutcome { outcome: Some(outcome.clone()) }),
        };
        entry.writes.put(Family::Meta, keyspace::token_key(&token), record.encode_to_vec());
        entry.writes.put(Family::Meta, keyspace::token_expiry_key(now, &token), []);
    }
    Ok(outcome)
}

fn remembered(entry: &Entry, token: &str) -> Result<Option<IdempotencyRecord>, StorageError> {
    let bytes = entry.view.get(Family::Meta, &keyspace::token_key(token))?;
    bytes.map(|b| engine::decode("transaction token", &b)).transpose()
}

/// Drops tokens older than the window, oldest first, a bounded number per transaction.
fn forget_expired_tokens(entry: &mut Entry, now: u64) -> Result<(), StorageError> {
    let cutoff = now.saturating_sub(IDEMPOTENCY_WINDOW_MICROS);
    let prefix_end = keyspace::prefix_end(keyspace::TOKEN_EXPIRY_PREFIX);
    let queue = entry.view.scan(Family::Meta, keyspace::TOKEN_EXPIRY_PREFIX, Some(&prefix_end), Direction::Forward);
    for item in queue.take(16) {
        let (key, _) = item?;
        let Some((at, token)) = keyspace::parse_token_expiry_key(&key) else { break };
        if at >= cutoff {
            break;
        }
        // The token may have been used again since: its newer record stays.
        if remembered(entry, token)?.is_some_and(|record| record.applied_at_micros == at) {
            entry.writes.delete(Family::Meta, keyspace::token_key(token));
        }
        entry.writes.delete(Family::Meta, &key);
    }
    Ok(())
}

fn run_transaction(
    entry: &mut Entry,
    r: &TransactWriteItemsRequest,
    version: &ItemVersion,
) -> Applied<TransactWriteItemsResponse> {
    let mut reasons = Vec::new();
    let mut writes: Vec<PlannedWrite> = Vec::new();
    for item in &r.transact_items {
        let planned = match &item.action {
            Some(Action::ConditionCheck(c)) => check(entry, c).map(|_| None),
            Some(Action::Put(p)) => plan_put(entry, p, version).map(Some),
            Some(Action::Update(u)) => plan_update(entry, u, version).map(|(w, _)| Some(w)),
            Some(Action::Delete(d)) => plan_delete(entry, d, version).map(Some),
            None => {
                Err(ApiError::validation("TransactItems can only contain one of Check, Put, Update or Delete").into())
            }
        };
        match planned {
            Ok(write) => {
                reasons.push(CancellationReason { code: "None".into(), ..Default::default() });
                writes.extend(write);
            }
            Err(ApplyError::Refused(e)) if e.kind == ErrorKind::ResourceNotFoundException => return Err(e.into()),
            Err(ApplyError::Refused(e)) => reasons.push(reason(&e)),
            Err(storage) => return Err(storage),
        }
    }
    if reasons.iter().any(|r| r.code != "None") {
        let codes: Vec<&str> = reasons.iter().map(|r| r.code.as_str()).collect();
        let message = format!(
            "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
            codes.join(", ")
        );
        return Err(ApiError::new(ErrorKind::TransactionCanceledException, message)
            .with_details(ErrorDetails { cancellation_reasons: reasons, ..Default::default() })
            .into());
    }
    for write in &writes {
        commit(entry, write)?;
    }
    Ok(TransactWriteItemsResponse { item_version: Some(version.clone()) })
}

/// A ConditionCheck: the condition against the item as it is, nothing written.
fn check(entry: &Entry, c: &tern_proto::v1::ConditionCheck) -> Applied<()> {
    let schema = entry.table(&c.table_name)?;
    schema.check_key_only(&c.key)?;
    let old = entry.read_item(&schema.storage_key(&c.key)?)?;
    Ok(check_condition(&c.condition(), old.as_ref())?)
}
