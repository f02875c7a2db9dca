//! TransactWriteItems (all or nothing, reasons per action, idempotency tokens) and TransactGetItems.

use tern_client::v1::{
    transact_write_item::Action, ConditionCheck, DeleteItemRequest, GetItemRequest, PutItemRequest, TransactGetItem,
    TransactGetItemsRequest, TransactWriteItem, TransactWriteItemsRequest, UpdateItemRequest,
};
use tern_client::Client;
use tern_tests::dynamo::{create_table, error, expect, json, wire};
use tern_tests::Region;

fn put(table: &str, item: &str) -> TransactWriteItem {
    TransactWriteItem {
        action: Some(Action::Put(PutItemRequest { table_name: table.into(), item: wire(item), ..Default::default() })),
    }
}

/// Adds to a balance; a debit (negative amount) only while the balance covers it.
fn add(table: &str, key: &str, amount: &str) -> TransactWriteItem {
    let debit = amount.strip_prefix('-');
    let (condition, values) = match debit {
        Some(floor) => {
            ("balance >= :floor".to_string(), format!(r#"{{":a":{{"N":"{amount}"}},":floor":{{"N":"{floor}"}}}}"#))
        }
        None => (String::new(), format!(r#"{{":a":{{"N":"{amount}"}}}}"#)),
    };
    TransactWriteItem {
        action: Some(Action::Update(UpdateItemRequest {
            table_name: table.into(),
            key: wire(key),
            update_expression: "ADD balance :a".into(),
            condition_expression: condition,
            expression_attribute_values: wire(&values),
            ..Default::default()
        })),
    }
}

fn check(table: &str, key: &str, condition: &str) -> TransactWriteItem {
    TransactWriteItem {
        action: Some(Action::ConditionCheck(ConditionCheck {
            table_name: table.into(),
            key: wire(key),
            condition_expression: condition.into(),
            return_values_on_condition_check_failure: "ALL_OLD".into(),
            ..Default::default()
        })),
    }
}

async fn balance(client: &Client, who: &str) -> serde_json::Value {
    let response = client
        .get_item_request(GetItemRequest {
            table_name: "accounts".into(),
            key: wire(&format!(r#"{{"id":{{"S":"{who}"}}}}"#)),
            consistent_read: true,
            ..Default::default()
        })
        .await
        .unwrap();
    response.item.map(|i| json(&i.attributes)["balance"].clone()).unwrap_or(serde_json::Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions() -> anyhow::Result<()> {
    let region = Region::start(1, &[]).await?;
    let client = region.client().await?;
    create_table(&client, "accounts", "id:S", None).await?;
    create_table(&client, "log", "id:S", None).await?;
    let transact = |items: Vec<TransactWriteItem>, token: &str| TransactWriteItemsRequest {
        transact_items: items,
        client_request_token: token.into(),
    };

    // All actions apply together.
    client
        .transact_write_items(transact(
            vec![
                put("accounts", r#"{"id":{"S":"alice"},"balance":{"N":"100"}}"#),
                put("accounts", r#"{"id":{"S":"bob"},"balance":{"N":"0"}}"#),
                put("accounts", r#"{"id":{"S":"zed"},"balance":{"N":"0"}}"#),
            ],
            "",
        ))
        .await?;
    let transfer = |amount: &str| {
        vec![
            add("accounts", r#"{"id":{"S":"alice"}}"#, &format!("-{amount}")),
            add("accounts", r#"{"id":{"S":"bob"}}"#, amount),
            put("log", &format!(r#"{{"id":{{"S":"t-{amount}"}}}}"#)),
        ]
    };
    client.transact_write_items(transact(transfer("30"), "")).await?;
    assert_eq!(
        (balance(&client, "alice").await, balance(&client, "bob").await),
        (expect(r#"{"N":"70"}"#), expect(r#"{"N":"30"}"#))
    );

    // One failed condition cancels every action, with a reason per action.
    let mut items = transfer("80");
    items.push(check("accounts", r#"{"id":{"S":"zed"}}"#, "attribute_exists(frozen)"));
    match client.transact_write_items(transact(items, "")).await {
        Err(tern_client::Error::Api(e)) => {
            assert_eq!(e.kind.name(), "TransactionCanceledException");
            assert_eq!(e.message, "Transaction cancelled, please refer cancellation reasons for specific reasons [ConditionalCheckFailed, None, None, ConditionalCheckFailed]");
            let reasons = e.details.expect("cancellation reasons").cancellation_reasons;
            let codes: Vec<&str> = reasons.iter().map(|r| r.code.as_str()).collect();
            assert_eq!(codes, ["ConditionalCheckFailed", "None", "None", "ConditionalCheckFailed"]);
            assert_eq!(reasons[0].message, "The conditional request failed");
            assert_eq!(
                json(&reasons[3].item.as_ref().expect("ALL_OLD item").attributes),
                expect(r#"{"id":{"S":"zed"},"balance":{"N":"0"}}"#)
            );
        }
        other => panic!("expected TransactionCanceledException, got {other:?}"),
    }
    assert_eq!(
        (balance(&client, "alice").await, balance(&client, "bob").await),
        (expect(r#"{"N":"70"}"#), expect(r#"{"N":"30"}"#))
    );
    let log = client
        .get_item_request(GetItemRequest {
            table_name: "log".into(),
            key: wire(r#"{"id":{"S":"t-80"}}"#),
            consistent_read: true,
            ..Default::default()
        })
        .await?;
    assert!(log.item.is_none(), "no action of a cancelled transaction is applied");

    // A ClientRequestToken makes a retry succeed without applying twice.
    let first = client.transact_write_items(transact(transfer("5"), "token-1")).await?;
    let again = client.transact_write_items(transact(transfer("5"), "token-1")).await?;
    assert_eq!(first.item_version, again.item_version, "the retry returns the first outcome");
    assert_eq!(balance(&client, "alice").await, expect(r#"{"N":"65"}"#));
    let (name, _) = error(client.transact_write_items(transact(transfer("6"), "token-1")).await);
    assert_eq!(name, "IdempotentParameterMismatchException");

    // Requests DynamoDB refuses outright.
    let twice = vec![
        add("accounts", r#"{"id":{"S":"alice"}}"#, "1"),
        TransactWriteItem {
            action: Some(Action::Delete(DeleteItemRequest {
                table_name: "accounts".into(),
                key: wire(r#"{"id":{"S":"alice"}}"#),
                ..Default::default()
            })),
        },
    ];
    assert_eq!(
        error(client.transact_write_items(transact(twice, "")).await).1,
        "Transaction request cannot include multiple operations on one item"
    );
    let too_many: Vec<_> = (0..101).map(|i| put("log", &format!(r#"{{"id":{{"S":"x{i}"}}}}"#))).collect();
    assert!(error(client.transact_write_items(transact(too_many, "")).await)
        .1
        .contains("Member must have length less than or equal to 100"));

    // TransactGetItems reads every item from one point.
    let get = |table: &str, key: &str, projection: &str| TransactGetItem {
        get: Some(GetItemRequest {
            table_name: table.into(),
            key: wire(key),
            projection_expression: projection.into(),
            ..Default::default()
        }),
    };
    let response = client
        .transact_get_items(TransactGetItemsRequest {
            transact_items: vec![
                get("accounts", r#"{"id":{"S":"alice"}}"#, "balance"),
                get("accounts", r#"{"id":{"S":"carol"}}"#, ""),
                get("log", r#"{"id":{"S":"t-30"}}"#, ""),
            ],
        })
        .await?;
    let items: Vec<serde_json::Value> = response
        .responses
        .iter()
        .map(|r| r.item.as_ref().map_or(serde_json::Value::Null, |i| json(&i.attributes)))
        .collect();
    assert_eq!(
        items,
        vec![expect(r#"{"balance":{"N":"65"}}"#), serde_json::Value::Null, expect(r#"{"id":{"S":"t-30"}}"#)]
    );
    Ok(())
}
