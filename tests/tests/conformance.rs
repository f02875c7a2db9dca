//! DynamoDB conformance, one file per area: each case asserts DynamoDB's documented result or error
//! exactly, through the client library against a real (single-node) region.

mod conformance {
    mod batches;
    mod conditions;
    mod filters;
    mod projection;
    mod transactions;
    mod updates;
}
