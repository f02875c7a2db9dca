//! The leader's loop that forgets idle client sessions: every minute it proposes one
//! `ForgetSessions` with the cutoff of the session window, so every replica forgets the same ones
//! (`apply::session` keeps and answers them).

use std::time::Duration;

use tern_proto::internal::{command, command_outcome, ForgetSessions};

use crate::apply::session::{FORGOTTEN_PER_ENTRY, SESSION_WINDOW_MICROS};
use crate::clock;
use crate::routing::RegionNode;

/// Until the node stops, every `every`: on the leader, forgets the sessions idle for the window.
pub async fn forget_idle_forever(node: RegionNode, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if !node.leads() {
            continue;
        }
        let idle_before_micros = clock::now_micros().saturating_sub(SESSION_WINDOW_MICROS);
        loop {
            let op = command::Op::ForgetSessions(ForgetSessions { idle_before_micros });
            match node.propose_as(op, None).await {
                Ok(command_outcome::Outcome::ForgetSessions(done))
                    if done.forgotten as usize == FORGOTTEN_PER_ENTRY => {}
                Ok(_) => break,
                Err(error) => {
                    tracing::debug!(%error, "forgetting idle sessions");
                    break;
                }
            }
        }
    }
}
