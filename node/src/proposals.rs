//! Proposing commands to Raft, with group commit: users' item writes that arrive while earlier ones
//! are in flight wait and then go to Raft together, as one batch entry (one log record, one fsync on
//! each node, one replication message, one apply write), and each gets its own outcome back. openraft
//! appends and syncs each proposal on its own before replicating it, so without this every write
//! costs the leader a sync of its own in turn.

use std::sync::Arc;

use openraft::error::{ClientWriteError, RaftError};
use prost::Message;
use tern_proto::internal::{command, command_outcome, Command, CommandOutcome, Commands};
use tern_proto::{ApiError, ErrorKind};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::apply::entry::MAX_BATCH_COMMANDS;
use crate::raft::types::{Proposal, Raft};

/// The encoded size past which a batch takes no more commands (a larger command goes alone). Kept
/// small so that a replication message of many batch entries still arrives within openraft's
/// AppendEntries timeout (one heartbeat interval).
pub const MAX_BATCH_BYTES: usize = 256 << 10;
/// Batches in flight at once: while this many wait to commit, new writes queue and go in the next.
/// Measured against 1, 2, 8 and 64 in `docs/benchmarks.md`.
pub const BATCHES_IN_FLIGHT: usize = 4;

/// [`BATCHES_IN_FLIGHT`], or `TERN_BATCHES_IN_FLIGHT` (1 to 1,024) for measuring others.
fn batches_in_flight() -> usize {
    let set = std::env::var("TERN_BATCHES_IN_FLIGHT").ok().and_then(|v| v.parse::<usize>().ok());
    set.map_or(BATCHES_IN_FLIGHT, |n| n.clamp(1, 1024))
}

/// What a proposal came to: the command's outcome, or why it did not commit.
type Answer = Result<command_outcome::Outcome, ApiError>;

/// A command waiting for its batch.
struct Waiting {
    command: Command,
    answer: oneshot::Sender<Answer>,
}

/// Proposes commands on this node's Raft, batching users' item writes.
#[derive(Clone)]
pub struct Proposer {
    raft: Raft,
    queue: mpsc::UnboundedSender<Waiting>,
    /// One permit per batch that may be in flight.
    in_flight: Arc<Semaphore>,
}

impl Proposer {
    /// A proposer for `raft`, with its batching task.
    pub fn start(raft: Raft) -> Proposer {
        let (queue, waiting) = mpsc::unbounded_channel();
        let in_flight = Arc::new(Semaphore::new(batches_in_flight()));
        tokio::spawn(batch_and_propose(raft.clone(), waiting, in_flight.clone()));
        Proposer { raft, queue, in_flight }
    }

    /// Proposes `command` and waits until it is applied here: its outcome, the refusal it applied as,
    /// or why it did not commit.
    pub async fn propose(&self, command: Command) -> Answer {
        if !batched(&command) {
            return propose(&self.raft, command).await;
        }
        // Room in flight: propose it at once, from here. (While the batching task waits for room, a
        // freed permit goes to it first, so what queued goes before this.)
        if let Ok(permit) = self.in_flight.clone().try_acquire_owned() {
            metrics::histogram!("tern_proposal_batch_commands").record(1.0);
            let answer = propose(&self.raft, command).await;
            drop(permit);
            return answer;
        }
        let (answer, answered) = oneshot::channel();
        if let Err(mpsc::error::SendError(Waiting { command, .. })) = self.queue.send(Waiting { command, answer }) {
            // The batching task is gone (the node is shutting down): propose alone.
            return propose(&self.raft, command).await;
        }
        answered.await.unwrap_or_else(|_| Err(ApiError::unavailable("The node stopped while writing; retry")))
    }
}

/// Whether a command goes in batches: users' item writes, which are bounded in size and stream
/// records. Table, stream, TTL and replication commands go alone (some take the entry's log index as
/// an identity).
fn batched(command: &Command) -> bool {
    use command::Op;
    matches!(
        command.op,
        Some(
            Op::PutItem(_) | Op::DeleteItem(_) | Op::UpdateItem(_) | Op::BatchWriteItem(_) | Op::TransactWriteItems(_)
        )
    )
}

/// Takes the queued commands in batches, at most [`BATCHES_IN_FLIGHT`] in flight at once.
async fn batch_and_propose(raft: Raft, mut waiting: mpsc::UnboundedReceiver<Waiting>, in_flight: Arc<Semaphore>) {
    let mut held: Option<Waiting> = None;
    loop {
        let first = match held.take() {
            Some(first) => first,
            None => match waiting.recv().await {
                Some(first) => first,
                None => return,
            },
        };
        let permit = in_flight.clone().acquire_owned().await.expect("the semaphore is never closed");
        let mut bytes = first.command.encoded_len();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_COMMANDS {
            let Ok(next) = waiting.try_recv() else { break };
            let size = next.command.encoded_len();
            if bytes + size > MAX_BATCH_BYTES {
                held = Some(next);
                break;
            }
            bytes += size;
            batch.push(next);
        }
        metrics::histogram!("tern_proposal_batch_commands").record(batch.len() as f64);
        tokio::spawn(propose_batch(raft.clone(), batch, permit));
    }
}

/// Proposes a batch (a lone command as itself) and hands each command its outcome.
async fn propose_batch(raft: Raft, batch: Vec<Waiting>, _permit: OwnedSemaphorePermit) {
    let (commands, answers): (Vec<Command>, Vec<oneshot::Sender<Answer>>) =
        batch.into_iter().map(|w| (w.command, w.answer)).unzip();
    if commands.len() == 1 {
        let answer = propose(&raft, commands.into_iter().next().expect("one command")).await;
        let _ = answers.into_iter().next().expect("one waiter").send(answer);
        return;
    }
    let count = commands.len();
    let batch = Command { op: Some(command::Op::Batch(Commands { commands })), ..Default::default() };
    let outcomes = match propose(&raft, batch).await {
        Ok(command_outcome::Outcome::Batch(batch)) if batch.outcomes.len() == count => {
            batch.outcomes.into_iter().map(|o| answer(o.outcome)).collect()
        }
        Ok(other) => vec![Err(ApiError::internal(format!("unexpected outcome of a batch: {other:?}"))); count],
        Err(error) => vec![Err(error); count],
    };
    for (waiter, outcome) in answers.into_iter().zip(outcomes) {
        let _ = waiter.send(outcome);
    }
}

/// Proposes one entry and waits until it is applied here.
async fn propose(raft: &Raft, command: Command) -> Answer {
    let response = raft.client_write(Proposal(command.encode_to_vec())).await.map_err(|e| match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => {
            ApiError::unavailable("Leadership changed while writing; retry")
        }
        other => ApiError::unavailable(format!("Write not committed: {other}")),
    })?;
    let outcome = CommandOutcome::decode(response.data.0.as_slice()).map_err(|e| ApiError::internal(e.to_string()))?;
    answer(outcome.outcome)
}

/// A command's outcome as its caller gets it: a refusal as the error it is.
fn answer(outcome: Option<command_outcome::Outcome>) -> Answer {
    match outcome {
        Some(command_outcome::Outcome::Error(error)) => {
            let kind = ErrorKind::from_name(&error.error_type).unwrap_or(ErrorKind::InternalServerError);
            let api_error = ApiError::new(kind, error.message);
            Err(match error.details {
                Some(details) => api_error.with_details(details),
                None => api_error,
            })
        }
        Some(outcome) => Ok(outcome),
        None => Err(ApiError::internal("empty outcome")),
    }
}
