//! The client's one retry policy: exponential backoff with jitter, bounded by a deadline, and a timeout
//! for each attempt well under the deadline.

use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};

/// How long calls keep retrying and how they back off.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total time a call may take, retries included.
    pub deadline: Duration,
    /// First delay between attempts.
    pub min_delay: Duration,
    /// Longest delay between attempts.
    pub max_delay: Duration,
    /// Longest wait for one attempt's answer (item and stream calls). A node that lets it pass (paused,
    /// overloaded, cut off) is asked last for a while, and the call is retried on the others: a new
    /// leader is elected in about two seconds. Writes stay exactly-once through the retries (the
    /// client's session). Control-plane calls (tables, replicas, membership) wait up to the deadline.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            deadline: Duration::from_secs(15),
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(500),
            attempt_timeout: Duration::from_secs(2),
        }
    }
}

/// The delays of one call, ending when the deadline would pass.
pub struct Attempts {
    delays: backon::ExponentialBackoff,
    until: Instant,
}

impl RetryPolicy {
    pub fn attempts(&self) -> Attempts {
        let delays = ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_jitter()
            .without_max_times()
            .build();
        Attempts { delays, until: Instant::now() + self.deadline }
    }
}

impl Attempts {
    /// Waits before the next attempt; false when the deadline leaves no room for one.
    pub async fn wait(&mut self) -> bool {
        let delay = self.delays.next().unwrap_or(Duration::from_millis(500));
        if Instant::now() + delay >= self.until {
            return false;
        }
        tokio::time::sleep(delay).await;
        true
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.until.saturating_duration_since(Instant::now())
    }
}
