//! Client sessions on the wire: the gRPC metadata a write call carries so that the region applies it
//! once however often it is retried (the node keeps each call's first outcome).

/// The client's session: an id unique to one client (a UUID).
pub const SESSION_KEY: &str = "tern-session";
/// The call's sequence number in its session; every retry of the call repeats it.
pub const SEQUENCE_KEY: &str = "tern-sequence";
/// Every call of the session below this sequence number has finished: the node may forget them.
pub const COMPLETED_BELOW_KEY: &str = "tern-completed-below";
