//! TransactWriteItems at apply time: every action's condition is checked against the same state, and
//! either all writes go into the entry's batch or none does. A ClientRequestToken makes a successful
//! transaction idempotent for ten minutes of log time.

use prost::Message;
use rocksdb::WriteBatch;
use tern_proto::internal::{command_outcome, IdempotencyRecord};
use tern_proto::v1::{
    transact_write_item::Action, CancellationReason, ErrorDetails, ItemVersion, TransactWriteItemsRequest,
    TransactWriteItemsResponse,
};
use tern_proto::{ApiError, ErrorKind};

use super::apply::{check_condition, error_outcome, Conditional, PlannedWrite, Tables};
use super::db::{cf, CF_SM_META};

/// How long a ClientRequestToken is remembered, in microseconds.
pub const IDEMPOTENCY_WINDOW_MICROS: u64 = 10 * 60 * 1_000_000;

const TOKEN_PREFIX: &str = "txn-token/";
const EXPIRY_PREFIX: &[u8] = b"txn-expiry/";

fn token_key(token: &str) -> Vec<u8> {
    format!("{TOKEN_PREFIX}{token}").into_bytes()
}

fn expiry_key(applied_at: u64, token: &str) -> Vec<u8> {
    [EXPIRY_PREFIX, &applied_at.to_be_bytes(), token.as_bytes()].concat()
}

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

impl Tables<'_> {
    /// Applies a transaction (or replays the outcome remembered for its token).
    pub fn transact_write_items(
        &mut self,
        r: TransactWriteItemsRequest,
        version: ItemVersion,
        batch: &mut WriteBatch,
    ) -> command_outcome::Outcome {
        let now = version.write_timestamp_micros;
        let token = r.client_request_token.clone();
        let request_hash = xxhash_rust::xxh3::xxh3_64(&r.encode_to_vec());
        if !token.is_empty() {
            self.forget_expired_tokens(now, batch);
            match self.remembered(&token) {
                Ok(Some(record)) if record.applied_at_micros + IDEMPOTENCY_WINDOW_MICROS > now => {
                    if record.request_hash != request_hash {
                        return error_outcome(ApiError::new(
                            ErrorKind::IdempotentParameterMismatchException,
                            "The ClientRequestToken was used with a different request within the last 10 minutes",
                        ));
                    }
                    if let Some(outcome) = record.outcome.and_then(|o| o.outcome) {
                        return outcome;
                    }
                }
                Ok(_) => {}
                Err(e) => return error_outcome(e),
            }
        }
        let outcome = match self.run_transaction(&r, &version, batch) {
            Ok(response) => command_outcome::Outcome::TransactWriteItems(response),
            Err(e) => return error_outcome(e),
        };
        if !token.is_empty() {
            let record = IdempotencyRecord {
                request_hash,
                applied_at_micros: now,
                outcome: Some(tern_proto::internal::CommandOutcome { outcome: Some(outcome.clone()) }),
            };
            batch.put_cf(cf(self.db, CF_SM_META), token_key(&token), record.encode_to_vec());
            batch.put_cf(cf(self.db, CF_SM_META), expiry_key(now, &token), []);
        }
        outcome
    }

    fn remembered(&self, token: &str) -> Result<Option<IdempotencyRecord>, ApiError> {
        let bytes =
            self.db.get_cf(cf(self.db, CF_SM_META), token_key(token)).map_err(|e| ApiError::internal(e.to_string()))?;
        bytes
            .map(|b| IdempotencyRecord::decode(b.as_slice()).map_err(|e| ApiError::internal(e.to_string())))
            .transpose()
    }

    /// Drops tokens older than the window, oldest first, a bounded number per transaction.
    fn forget_expired_tokens(&self, now: u64, batch: &mut WriteBatch) {
        let cutoff = now.saturating_sub(IDEMPOTENCY_WINDOW_MICROS);
        let meta = cf(self.db, CF_SM_META);
        let mode = rocksdb::IteratorMode::From(EXPIRY_PREFIX, rocksdb::Direction::Forward);
        for entry in self.db.iterator_cf(meta, mode).take(16) {
            let Ok((key, _)) = entry else { break };
            let Some(rest) = key.strip_prefix(EXPIRY_PREFIX) else { break };
            let (Some(at), Ok(token)) = (rest.get(..8), std::str::from_utf8(&rest[8.min(rest.len())..])) else { break };
            if u64::from_be_bytes(at.try_into().expect("8 bytes")) >= cutoff {
                break;
            }
            batch.delete_cf(meta, &key);
            batch.delete_cf(meta, token_key(token));
        }
    }

    fn run_transaction(
        &mut self,
        r: &TransactWriteItemsRequest,
        version: &ItemVersion,
        batch: &mut WriteBatch,
    ) -> Result<TransactWriteItemsResponse, ApiError> {
        let mut reasons = Vec::new();
        let mut writes: Vec<PlannedWrite> = Vec::new();
        for item in &r.transact_items {
            let planned = match &item.action {
                Some(Action::ConditionCheck(c)) => self.table(&c.table_name).and_then(|schema| {
                    schema.check_key_only(&c.key)?;
                    let old = self.read_item(&schema.storage_key(&c.key)?)?;
                    check_condition(&c.condition(), old.as_ref()).map(|_| None)
                }),
                Some(Action::Put(p)) => self.plan_put(p, version).map(Some),
                Some(Action::Update(u)) => self.plan_update(u, version).map(|(w, _)| Some(w)),
                Some(Action::Delete(d)) => self.plan_delete(d, version).map(Some),
                None => Err(ApiError::validation("TransactItems can only contain one of Check, Put, Update or Delete")),
            };
            match planned {
                Ok(write) => {
                    reasons.push(CancellationReason { code: "None".into(), ..Default::default() });
                    writes.extend(write);
                }
                Err(e) if e.kind == ErrorKind::ResourceNotFoundException => return Err(e),
                Err(e) => reasons.push(reason(&e)),
            }
        }
        if reasons.iter().any(|r| r.code != "None") {
            let codes: Vec<&str> = reasons.iter().map(|r| r.code.as_str()).collect();
            let message = format!(
                "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
                codes.join(", ")
            );
            return Err(ApiError::new(ErrorKind::TransactionCanceledException, message)
                .with_details(ErrorDetails { item: None, cancellation_reasons: reasons }));
        }
        for write in &writes {
            self.commit(write, batch);
        }
        Ok(TransactWriteItemsResponse { item_version: Some(version.clone()) })
    }
}
