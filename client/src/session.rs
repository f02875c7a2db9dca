//! The client's session: every write call gets a sequence number that all its retries repeat, so the
//! region applies the call once however often it is retried (a node killed after committing, a lost
//! reply, a failed forwarding hop). The client tells the region which calls have finished, so it can
//! forget their outcomes.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use tern_proto::session::{COMPLETED_BELOW_KEY, SEQUENCE_KEY, SESSION_KEY};

use crate::Error;

/// One client's session.
pub(crate) struct Session {
    id: String,
    /// The next sequence number and the calls in flight, together: a number is handed out and
    /// counted in flight at once, so no call can be reported finished before it starts.
    calls: Mutex<Calls>,
}

#[derive(Default)]
struct Calls {
    next: u64,
    in_flight: BTreeSet<u64>,
}

impl Session {
    pub(crate) fn new() -> Session {
        Session {
            id: format!("{:032x}", rand::random::<u128>()),
            calls: Mutex::new(Calls { next: 1, ..Default::default() }),
        }
    }

    /// A new write call.
    pub(crate) fn begin(&self) -> Call<'_> {
        let mut calls = self.calls.lock().expect("session lock");
        let sequence = calls.next;
        calls.next += 1;
        calls.in_flight.insert(sequence);
        Call { session: self, sequence }
    }

    /// Every call below this one has finished.
    fn completed_below(&self) -> u64 {
        let calls = self.calls.lock().expect("session lock");
        calls.in_flight.first().copied().unwrap_or(calls.next)
    }
}

/// One write call of a session, with its retries; finished when dropped.
pub(crate) struct Call<'a> {
    session: &'a Session,
    sequence: u64,
}

impl Call<'_> {
    /// An attempt of the call: the message with the session's metadata and the attempt's timeout.
    pub(crate) fn request<T>(&self, message: T, timeout: Duration) -> tonic::Request<T> {
        let mut request = crate::request(message, timeout);
        self.insert_into(request.metadata_mut());
        request
    }

    /// Puts the call's session metadata in `metadata`.
    pub(crate) fn insert_into(&self, metadata: &mut tonic::metadata::MetadataMap) {
        for (key, value) in [
            (SESSION_KEY, self.session.id.clone()),
            (SEQUENCE_KEY, self.sequence.to_string()),
            (COMPLETED_BELOW_KEY, self.session.completed_below().to_string()),
        ] {
            metadata.insert(key, value.parse().expect("ASCII metadata"));
        }
    }

    /// The call's result: a deadline that passed is an unknown outcome, since an attempt may have been
    /// applied before its reply was lost.
    pub(crate) fn finish<T>(self, result: Result<T, Error>) -> Result<T, Error> {
        match result {
            Err(Error::DeadlineExceeded { deadline, attempts, last }) => {
                Err(Error::OutcomeUnknown { deadline, attempts, last })
            }
            other => other,
        }
    }
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        self.session.calls.lock().expect("session lock").in_flight.remove(&self.sequence);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_finish_in_any_order_and_completed_below_follows_the_oldest() {
        let session = Session::new();
        let (first, second) = (session.begin(), session.begin());
        assert_eq!((first.sequence, second.sequence), (1, 2));
        assert_eq!(session.completed_below(), 1);
        drop(second);
        assert_eq!(session.completed_below(), 1, "the first call is still running");
        drop(first);
        assert_eq!(session.completed_below(), 3);
        let request = session.begin().request((), Duration::from_secs(1));
        assert_eq!(request.metadata().get(SEQUENCE_KEY).unwrap(), "3");
        assert_eq!(request.metadata().get(SESSION_KEY).unwrap().len(), 32);
    }
}
