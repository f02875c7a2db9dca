//! Any JSON given as DynamoDB JSON decodes or fails with a ValidationException, never panics; what
//! decodes survives the trip to the wire form and back, and prints back to JSON that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_proto::json::{item_from_json, item_to_json};
use tern_proto::value::{item_from_wire, item_to_wire};

fuzz_target!(|text: &str| {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else { return };
    let Ok(item) = item_from_json(&json) else { return };
    if let Ok(from_wire) = item_from_wire(item_to_wire(&item)) {
        assert_eq!(item_to_wire(&from_wire), item_to_wire(&item), "wire round trip changed the item");
    }
    let printed = item_to_json(&item);
    let again = item_from_json(&printed).expect("printed DynamoDB JSON decodes");
    assert_eq!(item_to_wire(&again), item_to_wire(&item), "JSON round trip changed the item");
});
