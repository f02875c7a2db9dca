//! FilterExpression, Select and Limit on Query and Scan, and parallel Scan.

use std::collections::BTreeSet;

use tern_client::v1::{BatchWriteItemRequest, PutRequest, QueryRequest, ScanRequest, WriteRequest, WriteRequestList};
use tern_tests::dynamo::{create_table, error, wire};
use tern_tests::Region;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters() -> anyhow::Result<()> {
    let region = Region::start(1, &[]).await?;
    let client = region.client().await?;
    create_table(&client, "events", "pk:S", Some("sk:N")).await?;
    for chunk in (0..100).collect::<Vec<u32>>().chunks(25) {
        let requests = chunk
            .iter()
            .map(|i| WriteRequest {
                request: Some(tern_client::v1::write_request::Request::PutRequest(PutRequest {
                    item: wire(&format!(
                        r#"{{"pk":{{"S":"p{}"}},"sk":{{"N":"{i}"}},"even":{{"BOOL":{}}}}}"#,
                        i % 4,
                        i % 2 == 0
                    )),
                })),
            })
            .collect();
        let request =
            BatchWriteItemRequest { request_items: [("events".to_string(), WriteRequestList { requests })].into() };
        client.batch_write_item(request).await?;
    }

    let query = |filter: &str, limit: u32, select: &str| QueryRequest {
        table_name: "events".into(),
        key_condition_expression: "pk = :p AND sk < :max".into(),
        filter_expression: filter.into(),
        expression_attribute_values: wire(if filter.is_empty() {
            r#"{":p":{"S":"p1"},":max":{"N":"50"}}"#
        } else {
            r#"{":p":{"S":"p1"},":max":{"N":"50"},":big":{"N":"20"}}"#
        }),
        limit,
        select: select.into(),
        consistent_read: true,
        ..Default::default()
    };
    // p1 holds sk 1, 5, 9, ...; below 50 that is 13 items, 8 of them above 20.
    let page = client.query(query("sk > :big", 0, "")).await?;
    assert_eq!((page.count, page.scanned_count, page.items.len()), (8, 13, 8));
    // Limit counts items read before the filter, as DynamoDB does.
    let page = client.query(query("sk > :big", 6, "")).await?;
    assert_eq!((page.count, page.scanned_count), (1, 6));
    assert!(page.last_evaluated_key.is_some());
    let page = client.query(query("sk > :big", 0, "COUNT")).await?;
    assert_eq!((page.count, page.scanned_count, page.items.len()), (8, 13, 0));
    let page = client.query(query("", 0, "COUNT")).await?;
    assert_eq!((page.count, page.items.len()), (13, 0));

    let scan = ScanRequest {
        table_name: "events".into(),
        filter_expression: "even = :t".into(),
        expression_attribute_values: wire(r#"{":t":{"BOOL":true}}"#),
        consistent_read: true,
        ..Default::default()
    };
    let page = client.scan(scan.clone()).await?;
    assert_eq!((page.count, page.scanned_count), (50, 100));

    // Four segments of a parallel scan cover every item exactly once.
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for segment in 0..4 {
        let request = ScanRequest { segment: Some(segment), total_segments: Some(4), ..scan.clone() };
        for item in client
            .scan_all(ScanRequest {
                filter_expression: String::new(),
                expression_attribute_values: Default::default(),
                ..request
            })
            .await?
        {
            total += 1;
            seen.insert(format!("{:?}/{:?}", item["pk"], item["sk"]));
        }
    }
    assert_eq!((total, seen.len()), (100, 100));

    let errors: [(ScanRequest, &str); 3] = [
        (ScanRequest { segment: Some(4), total_segments: Some(4), ..scan.clone() }, "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: 4 is not less than TotalSegments: 4"),
        (ScanRequest { select: "COUNT".into(), projection_expression: "pk".into(), ..scan.clone() }, "Cannot specify the ProjectionExpression when choosing to get only the Count"),
        (ScanRequest { select: "SPECIFIC_ATTRIBUTES".into(), ..scan.clone() }, "Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES"),
    ];
    for (request, message) in errors {
        assert_eq!(error(client.scan(request).await).1, message);
    }
    let (_, message) = error(client.scan(ScanRequest { filter_expression: String::new(), ..scan }).await);
    assert_eq!(
        message,
        "ExpressionAttributeValues can only be specified when using expressions: FilterExpression is null"
    );
    Ok(())
}
