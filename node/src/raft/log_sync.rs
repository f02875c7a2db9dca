//! How far the Raft log is on disk, and the thread that gets it there.
//!
//! An append is written at once (readable, not yet synced) and hands the sync to one thread, off the
//! async runtime, which makes every append that arrived meanwhile durable with one WAL sync (openraft
//! 0.9 waits for each append's flush before the next, so it is the leader's early appends that share
//! syncs). A follower's append is reported flushed to openraft only after its sync: its acknowledgement
//! counts towards a quorum.
//!
//! The leader's own entries are reported flushed as soon as they are written, so that openraft
//! replicates them while the leader's disk syncs; openraft 0.9 otherwise syncs the leader's log before it
//! sends a single entry. The Raft thesis (§10.2.1) allows the leader's write in parallel but counts the
//! leader only once its write is durable; openraft counts it at once, so three rules keep a commit from
//! being seen before it is durable on a quorum in fact:
//! - the state machine applies an entry (and so answers its client and shows it to readers) only once it
//!   is durable here ([`LogSync::wait_durable`]);
//! - followers are told of commits only up to the leader's durable entry ([`LogSync::clamp_commit`]), so
//!   a follower may learn of a commit one message later (at most a heartbeat interval);
//! - a node that led does not lead again in the same term after a restart ([`super::LogStore::open`]): a
//!   power loss may have taken entries it reported early, and it must not give their ids to new entries.
//!
//! An entry that is applied anywhere is therefore on the disk of the leader and of the followers that
//! acknowledged it. A leader that steps down answers its new leader from its log only after saving the
//! new vote, a synced write that makes its early entries durable too ([`LogSync::synced`]). Membership
//! entries are never reported early: a configuration change must not advance on a commit that is not
//! on disk.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use openraft::{AnyError, StorageIOError};
use tokio::sync::watch;

use super::types::{LogId, StorageError};
use crate::engine::Engine;

/// Told when an append is on disk, or that it could not be synced.
pub type OnDurable = Box<dyn FnOnce(std::io::Result<()>) + Send>;

/// The log's written and durable horizons, shared by the log store, the state machine and the network.
#[derive(Clone)]
pub struct LogSync {
    shared: Arc<Shared>,
    requests: mpsc::Sender<Option<OnDurable>>,
}

struct Shared {
    written: Mutex<Written>,
    /// The last entry on disk (with every entry before it).
    durable: watch::Sender<Durable>,
}

/// The last entry written, and how many truncations came before it: a sync that began before a
/// truncation does not make the entries written after it durable.
struct Written {
    last: Option<LogId>,
    truncations: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Durable {
    last: Option<LogId>,
    /// A sync failed: nothing written since is known to be on disk, and the node must stop.
    failed: bool,
}

impl LogSync {
    /// Starts the sync thread for the log in `engine`, whose last entry (`last`) is on disk.
    pub fn start(engine: Arc<dyn Engine>, last: Option<LogId>) -> std::io::Result<LogSync> {
        let (durable, _) = watch::channel(Durable { last, failed: false });
        let shared = Arc::new(Shared { written: Mutex::new(Written { last, truncations: 0 }), durable });
        let (requests, pending) = mpsc::channel();
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name("raft-log-sync".into())
            .spawn(move || sync_forever(engine, thread_shared, pending))?;
        Ok(LogSync { shared, requests })
    }

    /// Records that `last` was written (not synced) as the log's last entry, and asks the thread to sync
    /// it; `on_durable` is told when it is on disk.
    pub fn written(&self, last: LogId, on_durable: Option<OnDurable>) {
        self.shared.written.lock().expect("log sync lock").last = Some(last);
        if let Err(mpsc::SendError(on_durable)) = self.requests.send(on_durable) {
            self.shared.durable.send_modify(|d| d.failed = true);
            if let Some(on_durable) = on_durable {
                on_durable(Err(std::io::Error::other("the log sync thread stopped")));
            }
        }
    }

    /// Records that a synced write just made everything written so far durable.
    pub fn synced(&self) {
        let written = self.shared.written.lock().expect("log sync lock");
        advance(&self.shared.durable, written.last);
    }

    /// Records that the log was purged (synced) up to `purged`, which a snapshot holds: the horizons
    /// are at least there, even when the log held none of it (a snapshot replaced a divergent log).
    pub fn purged(&self, purged: LogId) {
        let mut written = self.shared.written.lock().expect("log sync lock");
        if written.last.map(|l| l.index) < Some(purged.index) {
            written.last = Some(purged);
            written.truncations += 1;
            self.shared.durable.send_modify(|d| d.last = Some(purged));
        }
    }

    /// Records that the log was truncated, synced, and now ends at `last`.
    pub fn truncated(&self, last: Option<LogId>) {
        let mut written = self.shared.written.lock().expect("log sync lock");
        written.last = last;
        written.truncations += 1;
        self.shared.durable.send_modify(|durable| durable.last = last);
    }

    /// The last entry on disk.
    pub fn durable(&self) -> Option<LogId> {
        self.shared.durable.borrow().last
    }

    /// Waits until the log up to `index` is on disk (as far as it was written: openraft's storage suite
    /// applies entries it never appended).
    pub async fn wait_durable(&self, index: u64) -> Result<(), StorageError> {
        let written = self.shared.written.lock().expect("log sync lock").last.map_or(0, |last| last.index);
        let index = index.min(written);
        let mut durable = self.shared.durable.subscribe();
        let reached = durable.wait_for(|d| d.failed || d.last.map_or(0, |last| last.index) >= index).await;
        match reached {
            Ok(d) if !d.failed => Ok(()),
            _ => Err(StorageIOError::write_logs(AnyError::error("the Raft log could not be synced")).into()),
        }
    }

    /// The commit to tell a follower of: `committed`, or the leader's last durable entry if that is earlier.
    pub fn clamp_commit(&self, committed: Option<LogId>) -> Option<LogId> {
        let durable = self.durable();
        match (committed, durable) {
            (Some(c), Some(d)) if d.index < c.index => Some(d),
            (Some(_), None) => None,
            (committed, _) => committed,
        }
    }
}

/// Moves the durable horizon up to `target`; never after a failed sync (a later sync's success does not
/// prove the earlier writes reached the disk).
fn advance(durable: &watch::Sender<Durable>, target: Option<LogId>) {
    durable.send_if_modified(|d| {
        let advance = !d.failed && d.last.map(|l| l.index) < target.map(|t| t.index);
        if advance {
            d.last = target;
        }
        advance
    });
}

/// Syncs the log whenever asked, once for every request that arrived meanwhile, until every [`LogSync`]
/// is dropped.
fn sync_forever(engine: Arc<dyn Engine>, shared: Arc<Shared>, pending: mpsc::Receiver<Option<OnDurable>>) {
    /// Whatever ends the thread (a panic included) fails every wait, rather than leaving it waiting.
    struct Stopped<'a>(&'a watch::Sender<Durable>);
    impl Drop for Stopped<'_> {
        fn drop(&mut self) {
            self.0.send_modify(|d| d.failed = true);
        }
    }
    let _stopped = Stopped(&shared.durable);
    while let Ok(first) = pending.recv() {
        let mut callbacks: Vec<_> = std::iter::once(first).chain(pending.try_iter()).flatten().collect();
        let (target, truncations) = {
            let written = shared.written.lock().expect("log sync lock");
            (written.last, written.truncations)
        };
        let synced = engine.flush();
        {
            let written = shared.written.lock().expect("log sync lock");
            match &synced {
                Ok(()) if written.truncations == truncations => advance(&shared.durable, target),
                Ok(()) => {}
                Err(error) => {
                    tracing::error!(%error, "syncing the Raft log failed");
                    shared.durable.send_modify(|d| d.failed = true);
                }
            }
        }
        for on_durable in callbacks.drain(..) {
            on_durable(synced.as_ref().map(|_| ()).map_err(|e| std::io::Error::other(e.to_string())));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::Duration;

    use openraft::testing::log_id;
    use tokio::sync::oneshot;

    use super::{LogSync, OnDurable};
    use crate::engine::{Engine, Memory, ReadView, StorageError, WriteSet};
    use crate::keyspace::Family;

    /// The in-memory engine, whose syncs wait until the test lets them through (or fail).
    struct HeldSyncs {
        memory: Memory,
        /// How many syncs may still pass, and whether they fail.
        gate: Mutex<(usize, bool)>,
        opened: Condvar,
        /// How many syncs have begun.
        begun: AtomicUsize,
    }

    impl HeldSyncs {
        fn new() -> Arc<HeldSyncs> {
            Arc::new(HeldSyncs {
                memory: Memory::new(),
                gate: Mutex::new((0, false)),
                opened: Condvar::new(),
                begun: AtomicUsize::new(0),
            })
        }

        fn let_through(&self, syncs: usize, fail: bool) {
            *self.gate.lock().unwrap() = (syncs, fail);
            self.opened.notify_all();
        }

        /// Waits until `syncs` syncs have begun (and are held, unless let through).
        async fn begun(&self, syncs: usize) {
            for _ in 0..500 {
                if self.begun.load(Ordering::SeqCst) >= syncs {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("{syncs} syncs did not begin");
        }
    }

    impl Engine for HeldSyncs {
        fn latest(&self) -> &dyn ReadView {
            self.memory.latest()
        }
        fn view(&self) -> Box<dyn ReadView + '_> {
            self.memory.view()
        }
        fn write(&self, writes: WriteSet, durable: bool) -> Result<(), StorageError> {
            self.memory.write(writes, durable)
        }
        fn estimated_keys(&self, family: Family) -> u64 {
            self.memory.estimated_keys(family)
        }
        fn flush(&self) -> Result<(), StorageError> {
            self.begun.fetch_add(1, Ordering::SeqCst);
            let mut gate = self.opened.wait_while(self.gate.lock().unwrap(), |(left, _)| *left == 0).unwrap();
            gate.0 -= 1;
            if gate.1 {
                return Err(StorageError::Engine("the disk is gone".into()));
            }
            Ok(())
        }
    }

    fn on_durable() -> (OnDurable, oneshot::Receiver<std::io::Result<()>>) {
        let (tx, rx) = oneshot::channel();
        (Box::new(move |synced| drop(tx.send(synced))), rx)
    }

    async fn pending<T>(future: impl std::future::Future<Output = T>) -> bool {
        tokio::time::timeout(Duration::from_millis(100), future).await.is_err()
    }

    #[tokio::test]
    async fn an_append_is_durable_only_after_its_sync() {
        let engine = HeldSyncs::new();
        let sync = LogSync::start(engine.clone(), Some(log_id(1, 1, 4))).unwrap();
        let (told, mut durable) = on_durable();
        sync.written(log_id(1, 1, 6), Some(told));

        assert!(pending(&mut durable).await, "told durable before the sync");
        assert!(pending(sync.wait_durable(5)).await, "entry 5 counted durable before the sync");
        assert_eq!(sync.durable(), Some(log_id(1, 1, 4)));
        sync.wait_durable(4).await.expect("what was on disk at start is durable");

        engine.let_through(1, false);
        durable.await.unwrap().expect("the sync succeeded");
        sync.wait_durable(6).await.unwrap();
        assert_eq!(sync.durable(), Some(log_id(1, 1, 6)));
    }

    #[tokio::test]
    async fn appends_that_arrive_during_a_sync_share_the_next_one() {
        let engine = HeldSyncs::new();
        let sync = LogSync::start(engine.clone(), None).unwrap();
        let (first, first_durable) = on_durable();
        sync.written(log_id(1, 1, 1), Some(first));
        // The thread is now held in the first sync; these three queue behind it.
        engine.begun(1).await;
        let mut rest = Vec::new();
        for index in 2..=4 {
            let (told, durable) = on_durable();
            sync.written(log_id(1, 1, index), Some(told));
            rest.push(durable);
        }
        engine.let_through(2, false);
        first_durable.await.unwrap().unwrap();
        for durable in rest {
            durable.await.unwrap().unwrap();
        }
        assert_eq!(sync.durable(), Some(log_id(1, 1, 4)));
        assert_eq!(engine.begun.load(Ordering::SeqCst), 2, "two syncs for four appends");
    }

    #[tokio::test]
    async fn a_sync_that_began_before_a_truncation_does_not_count_what_came_after() {
        let engine = HeldSyncs::new();
        let sync = LogSync::start(engine.clone(), Some(log_id(1, 1, 2))).unwrap();
        sync.written(log_id(1, 1, 5), None);
        engine.begun(1).await;
        // A new leader's truncation (itself synced) leaves the log at 3, and then the sync ends.
        sync.truncated(Some(log_id(1, 1, 3)));
        assert_eq!(sync.durable(), Some(log_id(1, 1, 3)));
        sync.written(log_id(2, 2, 4), None);
        engine.let_through(1, false);
        engine.begun(2).await;
        assert_eq!(sync.durable(), Some(log_id(1, 1, 3)), "the first sync counted the truncated entries");
        engine.let_through(1, false);
        sync.wait_durable(4).await.unwrap();
        assert_eq!(sync.durable(), Some(log_id(2, 2, 4)));
    }

    #[tokio::test]
    async fn a_failed_sync_fails_its_appends_and_every_wait() {
        let engine = HeldSyncs::new();
        let sync = LogSync::start(engine.clone(), None).unwrap();
        let (told, durable) = on_durable();
        sync.written(log_id(1, 1, 1), Some(told));
        engine.let_through(1, true);
        assert!(durable.await.unwrap().is_err());
        assert!(sync.wait_durable(1).await.is_err());
        // A later sync that succeeds does not prove the failed one's writes reached the disk.
        engine.let_through(1, false);
        sync.written(log_id(1, 1, 2), None);
        engine.begun(2).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(sync.durable(), None);
        assert!(sync.wait_durable(2).await.is_err());
    }

    #[tokio::test]
    async fn a_synced_write_or_a_purge_moves_the_horizons() {
        let engine = HeldSyncs::new();
        let sync = LogSync::start(engine.clone(), Some(log_id(1, 1, 2))).unwrap();
        sync.written(log_id(1, 1, 5), None);
        engine.begun(1).await;
        // The vote's synced write made 3..=5 durable, whatever the held sync does.
        sync.synced();
        assert_eq!(sync.durable(), Some(log_id(1, 1, 5)));
        // A snapshot at 9 replaced a log that ended at 5.
        sync.purged(log_id(2, 2, 9));
        assert_eq!(sync.durable(), Some(log_id(2, 2, 9)));
        sync.wait_durable(9).await.unwrap();
        engine.let_through(1, false);
    }

    #[tokio::test]
    async fn followers_are_told_of_commits_only_up_to_the_leaders_durable_entry() {
        let engine = HeldSyncs::new();
        let sync = LogSync::start(engine.clone(), Some(log_id(1, 1, 7))).unwrap();
        assert_eq!(sync.clamp_commit(Some(log_id(1, 1, 9))), Some(log_id(1, 1, 7)));
        assert_eq!(sync.clamp_commit(Some(log_id(1, 1, 7))), Some(log_id(1, 1, 7)));
        assert_eq!(sync.clamp_commit(Some(log_id(1, 1, 5))), Some(log_id(1, 1, 5)));
        assert_eq!(sync.clamp_commit(None), None);
        let empty = LogSync::start(engine.clone(), None).unwrap();
        assert_eq!(empty.clamp_commit(Some(log_id(1, 1, 1))), None);
    }
}
