//! ProjectionExpression on GetItem and Query: nested maps, list elements, placeholders, errors.

use tern_client::v1::{GetItemRequest, PutItemRequest, QueryRequest};
use tern_tests::dynamo::{create_table, error, expect, json, names, wire};
use tern_tests::Region;

/// A projection, its names, and DynamoDB's error for it.
type ProjectionError = (&'static str, Vec<(&'static str, &'static str)>, &'static str);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projection() -> anyhow::Result<()> {
    let region = Region::start(1, &[]).await?;
    let client = region.client().await?;
    create_table(&client, "users", "pk:S", Some("sk:N")).await?;
    let item = r#"{"pk":{"S":"u"},"sk":{"N":"1"},"name":{"S":"Ada"},"address":{"M":{"city":{"S":"London"},"zip":{"S":"N1"}}},
        "phones":{"L":[{"S":"111"},{"S":"222"},{"S":"333"}]},"age":{"N":"36"}}"#;
    client
        .put_item_request(PutItemRequest { table_name: "users".into(), item: wire(item), ..Default::default() })
        .await?;

    let get = |projection: &str, pairs: &[(&str, &str)]| GetItemRequest {
        table_name: "users".into(),
        key: wire(r#"{"pk":{"S":"u"},"sk":{"N":"1"}}"#),
        consistent_read: true,
        projection_expression: projection.into(),
        expression_attribute_names: names(pairs),
        ..Default::default()
    };
    let cases = [
        ("age, address.city", vec![], r#"{"age":{"N":"36"},"address":{"M":{"city":{"S":"London"}}}}"#),
        ("phones[2], phones[0]", vec![], r#"{"phones":{"L":[{"S":"111"},{"S":"333"}]}}"#),
        ("#n, zzz", vec![("#n", "name")], r#"{"name":{"S":"Ada"}}"#),
        ("address.nope, phones[9]", vec![], r#"{}"#),
    ];
    for (projection, pairs, expected) in cases {
        let response = client.get_item_request(get(projection, &pairs)).await?;
        assert_eq!(json(&response.item.expect("the item").attributes), expect(expected), "{projection}");
    }

    let query = QueryRequest {
        table_name: "users".into(),
        key_condition_expression: "pk = :p".into(),
        expression_attribute_values: wire(r#"{":p":{"S":"u"}}"#),
        projection_expression: "sk, address.zip".into(),
        consistent_read: true,
        ..Default::default()
    };
    let page = client.query(query).await?;
    assert_eq!(
        page.items.iter().map(|i| json(&i.attributes)).collect::<Vec<_>>(),
        vec![expect(r#"{"sk":{"N":"1"},"address":{"M":{"zip":{"S":"N1"}}}}"#)]
    );

    let errors: [ProjectionError; 4] = [
        ("name", vec![], "Invalid ProjectionExpression: Attribute name is a reserved keyword; reserved keyword: name"),
        ("address, address.city", vec![], "Invalid ProjectionExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [address], path two: [address, city]"),
        ("#x", vec![], "Invalid ProjectionExpression: An expression attribute name used in the document path is not defined; attribute name: #x"),
        ("age", vec![("#n", "name")], "Value provided in ExpressionAttributeNames unused in expressions: keys: {#n}"),
    ];
    for (projection, pairs, message) in errors {
        let (name, got) = error(client.get_item_request(get(projection, &pairs)).await);
        assert_eq!((name.as_str(), got.as_str()), ("ValidationException", message), "{projection}");
    }
    let (_, message) = error(client.get_item_request(get("!!", &[])).await);
    assert_eq!(message, "Invalid ProjectionExpression: Syntax error; token: \"!\", near: \"!!\"");
    Ok(())
}
