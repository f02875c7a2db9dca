//! Client sessions at apply time: a write call carries its session and sequence number, and the state
//! machine answers a retry of a call it has applied with the first outcome instead of applying it
//! again. A call's outcome goes when the client reports the call finished (`completed_below`); a
//! session idle for [`SESSION_WINDOW_MICROS`] of log time goes whole ([`forget_sessions`], proposed by
//! the leader). Both are decided in the log, so every replica keeps the same outcomes.

use prost::Message;
use tern_proto::internal::{
    command_outcome, ClientSession, CommandOutcome, ForgetSessions, ForgetSessionsOutcome, SessionRecord, SessionState,
};
use tern_proto::{ApiError, ErrorKind};

use super::entry::{Applied, Entry};
use crate::engine::{self, Direction, ReadView, StorageError, WriteSet};
use crate::keyspace::{self, Family};

/// How long an idle session's outcomes are kept (microseconds of log time).
pub const SESSION_WINDOW_MICROS: u64 = 10 * 60 * 1_000_000;
/// Most sessions forgotten per entry, so one entry's work stays bounded (the leader proposes again at
/// once while an entry was full).
pub const FORGOTTEN_PER_ENTRY: usize = 1000;

fn state(view: &dyn ReadView, id: &str) -> Result<SessionState, StorageError> {
    let bytes = view.get(Family::Meta, &keyspace::session_state_key(id))?;
    Ok(bytes.map(|b| engine::decode("session state", &b)).transpose()?.unwrap_or_default())
}

/// Admits a session call: forgets the calls the client has finished since its last call, then finds
/// whether this call was applied before. Some outcome when it was (a retry: answer with it, apply
/// nothing); none when the call is new (apply it, then [`remember`] its outcome).
pub fn admit(
    view: &dyn ReadView,
    writes: &mut WriteSet,
    call: &ClientSession,
    now: u64,
) -> Result<Option<command_outcome::Outcome>, StorageError> {
    let mut session = state(view, &call.id)?;
    if call.sequence < session.forgotten_below {
        // The client said this call had finished, and its outcome is gone: it cannot be told.
        let refusal = ApiError::new(
            ErrorKind::ValidationException,
            format!(
                "Call {} of session {} has finished and is forgotten: its outcome is unknown",
                call.sequence, call.id
            ),
        );
        return Ok(Some(super::error_outcome(refusal)));
    }
    if call.completed_below > session.forgotten_below {
        // Point deletes of the calls finished since the session's last call: only those are scanned.
        let from = keyspace::session_key(&call.id, session.forgotten_below);
        let to = keyspace::session_key(&call.id, call.completed_below);
        for item in view.scan(Family::Meta, &from, Some(&to), Direction::Forward) {
            writes.delete(Family::Meta, item?.0);
        }
        session.forgotten_below = call.completed_below;
    }
    session.last_applied_at_micros = now;
    writes.put(Family::Meta, keyspace::session_state_key(&call.id), session.encode_to_vec());
    match view.get(Family::Meta, &keyspace::session_key(&call.id, call.sequence))? {
        Some(bytes) => {
            let record: SessionRecord = engine::decode("session record", &bytes)?;
            Ok(record.outcome.and_then(|o| o.outcome))
        }
        None => Ok(None),
    }
}

/// Remembers a call's outcome.
pub fn remember(writes: &mut WriteSet, call: &ClientSession, outcome: &command_outcome::Outcome, now: u64) {
    let record =
        SessionRecord { outcome: Some(CommandOutcome { outcome: Some(outcome.clone()) }), applied_at_micros: now };
    writes.put(Family::Meta, keyspace::session_key(&call.id, call.sequence), record.encode_to_vec());
}

/// Forgets every session whose last call applied before the cutoff, at most
/// [`FORGOTTEN_PER_ENTRY`] of them: its state and its outcomes (point deletes of the calls from the
/// session's `forgotten_below` on: the ones below were deleted as the client finished them).
pub fn forget_sessions(entry: &mut Entry, r: ForgetSessions) -> Applied<ForgetSessionsOutcome> {
    let mut outcome = ForgetSessionsOutcome::default();
    let end = keyspace::prefix_end(keyspace::SESSION_STATE_PREFIX);
    let mut idle = Vec::new();
    for item in entry.view.scan(Family::Meta, keyspace::SESSION_STATE_PREFIX, Some(&end), Direction::Forward) {
        let (key, value) = item?;
        let state: SessionState = engine::decode("session state", &value)?;
        if state.last_applied_at_micros < r.idle_before_micros {
            idle.push((key, state));
            if idle.len() == FORGOTTEN_PER_ENTRY {
                break;
            }
        }
    }
    for (key, state) in idle {
        let id = String::from_utf8_lossy(&key[keyspace::SESSION_STATE_PREFIX.len()..]).into_owned();
        let (from, to) = (keyspace::session_key(&id, state.forgotten_below), keyspace::session_key(&id, u64::MAX));
        for call in entry.view.scan(Family::Meta, &from, Some(&to), Direction::Forward) {
            entry.writes.delete(Family::Meta, call?.0);
        }
        entry.writes.delete(Family::Meta, &key);
        outcome.forgotten += 1;
    }
    Ok(outcome)
}
