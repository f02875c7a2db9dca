//! BatchWriteItem and BatchGetItem: limits, duplicates, projections, several tables.

use tern_client::v1::{
    write_request::Request, BatchGetItemRequest, BatchWriteItemRequest, DeleteRequest, Item, KeysAndAttributes,
    PutRequest, WriteRequest, WriteRequestList,
};
use tern_tests::dynamo::{create_table, error, expect, json, wire};
use tern_tests::Region;

fn put(text: &str) -> WriteRequest {
    WriteRequest { request: Some(Request::PutRequest(PutRequest { item: wire(text) })) }
}

fn delete(text: &str) -> WriteRequest {
    WriteRequest { request: Some(Request::DeleteRequest(DeleteRequest { key: wire(text) })) }
}

fn writes(table: &str, requests: Vec<WriteRequest>) -> BatchWriteItemRequest {
    BatchWriteItemRequest { request_items: [(table.to_string(), WriteRequestList { requests })].into() }
}

fn keys(range: std::ops::Range<u32>) -> Vec<Item> {
    range.map(|i| Item { attributes: wire(&format!(r#"{{"id":{{"N":"{i}"}}}}"#)) }).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches() -> anyhow::Result<()> {
    let region = Region::start(1, &[]).await?;
    let client = region.client().await?;
    create_table(&client, "tbl_a", "id:N", None).await?;
    create_table(&client, "tbl_b", "id:N", None).await?;

    for start in [0, 25, 50, 75] {
        let requests = (start..start + 25)
            .map(|i| put(&format!(r#"{{"id":{{"N":"{i}"}},"v":{{"S":"a{i}"}},"w":{{"N":"{i}"}}}}"#)))
            .collect();
        let response = client.batch_write_item(writes("tbl_a", requests)).await?;
        assert!(response.unprocessed_items.is_empty());
    }
    let mixed = BatchWriteItemRequest {
        request_items: [
            (
                "tbl_a".to_string(),
                WriteRequestList { requests: vec![delete(r#"{"id":{"N":"0"}}"#), delete(r#"{"id":{"N":"1"}}"#)] },
            ),
            ("tbl_b".to_string(), WriteRequestList { requests: vec![put(r#"{"id":{"N":"1"},"v":{"S":"b1"}}"#)] }),
        ]
        .into(),
    };
    client.batch_write_item(mixed).await?;

    // 100 keys over two tables, strongly consistent, with a projection on one.
    let request = BatchGetItemRequest {
        request_items: [
            (
                "tbl_a".to_string(),
                KeysAndAttributes {
                    keys: keys(0..99),
                    projection_expression: "v".into(),
                    consistent_read: true,
                    ..Default::default()
                },
            ),
            ("tbl_b".to_string(), KeysAndAttributes { keys: keys(1..2), consistent_read: true, ..Default::default() }),
        ]
        .into(),
    };
    let response = client.batch_get_item(request).await?;
    let a = &response.responses["tbl_a"].items;
    assert_eq!(a.len(), 97, "keys 0 and 1 were deleted, 99 is past the range");
    assert!(a.iter().all(|i| i.attributes.len() == 1 && i.attributes.contains_key("v")));
    assert_eq!(
        response.responses["tbl_b"].items.iter().map(|i| json(&i.attributes)).collect::<Vec<_>>(),
        vec![expect(r#"{"id":{"N":"1"},"v":{"S":"b1"}}"#)]
    );
    assert!(response.unprocessed_keys.is_empty());

    let too_many = (0..26).map(|i| put(&format!(r#"{{"id":{{"N":"{i}"}}}}"#))).collect();
    let (name, message) = error(client.batch_write_item(writes("tbl_a", too_many)).await);
    assert_eq!(name, "ValidationException");
    assert!(message.contains("Member must have length less than or equal to 25"), "{message}");
    let duplicated = vec![put(r#"{"id":{"N":"5"}}"#), delete(r#"{"id":{"N":"5.0"}}"#)];
    assert_eq!(
        error(client.batch_write_item(writes("tbl_a", duplicated)).await).1,
        "Provided list of item keys contains duplicates"
    );
    let request = BatchGetItemRequest {
        request_items: [("tbl_a".to_string(), KeysAndAttributes { keys: keys(0..101), ..Default::default() })].into(),
    };
    assert_eq!(error(client.batch_get_item(request).await).1, "Too many items requested for the BatchGetItem call");
    let mut doubled = keys(3..4);
    doubled.extend(keys(3..4));
    let request = BatchGetItemRequest {
        request_items: [("tbl_a".to_string(), KeysAndAttributes { keys: doubled, ..Default::default() })].into(),
    };
    assert_eq!(error(client.batch_get_item(request).await).1, "Provided list of item keys contains duplicates");
    let (name, _) = error(client.batch_write_item(writes("missing", vec![put(r#"{"id":{"N":"1"}}"#)])).await);
    assert_eq!(name, "ResourceNotFoundException");
    Ok(())
}
