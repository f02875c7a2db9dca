//! UpdateExpression: SET (arithmetic, if_not_exists, list_append, nested paths), REMOVE, ADD, DELETE,
//! ReturnValues, and DynamoDB's errors.

use tern_client::v1::{GetItemRequest, UpdateItemRequest};
use tern_client::Client;
use tern_tests::dynamo::{create_table, error, expect, json, names, wire};
use tern_tests::Region;

fn update(key: &str, expression: &str, values: &str, return_values: &str) -> UpdateItemRequest {
    UpdateItemRequest {
        table_name: "docs".into(),
        key: wire(key),
        update_expression: expression.into(),
        expression_attribute_values: wire(values),
        return_values: return_values.into(),
        ..Default::default()
    }
}

async fn stored(client: &Client, key: &str) -> serde_json::Value {
    let response = client
        .get_item_request(GetItemRequest {
            table_name: "docs".into(),
            key: wire(key),
            consistent_read: true,
            ..Default::default()
        })
        .await
        .unwrap();
    response.item.map(|i| json(&i.attributes)).unwrap_or(serde_json::Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates() -> anyhow::Result<()> {
    let region = Region::start(1, &[]).await?;
    let client = region.client().await?;
    create_table(&client, "docs", "id:S", None).await?;
    let key = r#"{"id":{"S":"d1"}}"#;

    // UpdateItem on a missing item creates it from the key.
    let response = client.update_item(update(key, "SET n = :a, l = :l, m = :m, s = :s", r#"{":a":{"N":"0.1"},":l":{"L":[{"S":"a"},{"S":"b"},{"S":"c"}]},":m":{"M":{"x":{"N":"1"}}},":s":{"SS":["a","b"]}}"#, "ALL_NEW")).await?;
    assert_eq!(
        json(&response.attributes.unwrap().attributes),
        expect(
            r#"{"id":{"S":"d1"},"n":{"N":"0.1"},"l":{"L":[{"S":"a"},{"S":"b"},{"S":"c"}]},"m":{"M":{"x":{"N":"1"}}},"s":{"SS":["a","b"]}}"#
        )
    );

    // Exact decimal arithmetic, if_not_exists and list_append, nested map and list paths.
    client
        .update_item(update(
            key,
            "SET n = n + :a, c = if_not_exists(c, :zero) - :one, l = list_append(l, :more), m.y = :t",
            r#"{":a":{"N":"0.2"},":zero":{"N":"0"},":one":{"N":"1"},":more":{"L":[{"S":"d"}]},":t":{"BOOL":true}}"#,
            "NONE",
        ))
        .await?;
    client.update_item(update(key, "SET l[1] = :z", r#"{":z":{"S":"B"}}"#, "NONE")).await?;
    assert_eq!(
        stored(&client, key).await,
        expect(
            r#"{"id":{"S":"d1"},"n":{"N":"0.3"},"c":{"N":"-1"},"l":{"L":[{"S":"a"},{"S":"B"},{"S":"c"},{"S":"d"}]},"m":{"M":{"x":{"N":"1"},"y":{"BOOL":true}}},"s":{"SS":["a","b"]}}"#
        )
    );

    // ADD to numbers and sets (a missing attribute starts from the value); UPDATED_NEW returns them.
    let response = client
        .update_item(update(
            key,
            "ADD s :more, n :five, fresh :one",
            r#"{":more":{"SS":["c"]},":five":{"N":"5"},":one":{"N":"1"}}"#,
            "UPDATED_NEW",
        ))
        .await?;
    assert_eq!(
        json(&response.attributes.unwrap().attributes),
        expect(r#"{"s":{"SS":["a","b","c"]},"n":{"N":"5.3"},"fresh":{"N":"1"}}"#)
    );
    // REMOVE list elements by their index in the list as it was; DELETE from a set.
    client
        .update_item(update(key, "REMOVE l[0], l[2], m.x DELETE s :gone", r#"{":gone":{"SS":["a"]}}"#, "NONE"))
        .await?;
    assert_eq!(
        stored(&client, key).await,
        expect(
            r#"{"id":{"S":"d1"},"n":{"N":"5.3"},"c":{"N":"-1"},"fresh":{"N":"1"},"l":{"L":[{"S":"B"},{"S":"d"}]},"m":{"M":{"y":{"BOOL":true}}},"s":{"SS":["b","c"]}}"#
        )
    );

    // UPDATED_OLD returns the updated attributes as they were; a set left empty is removed.
    let response = client
        .update_item(update(
            key,
            "SET c = :x DELETE s :all",
            r#"{":x":{"S":"text"},":all":{"SS":["b","c"]}}"#,
            "UPDATED_OLD",
        ))
        .await?;
    assert_eq!(json(&response.attributes.unwrap().attributes), expect(r#"{"c":{"N":"-1"},"s":{"SS":["b","c"]}}"#));
    let response = client.update_item(update(key, "REMOVE fresh", "{}", "ALL_OLD")).await?;
    assert_eq!(json(&response.attributes.unwrap().attributes)["c"], expect(r#"{"S":"text"}"#));
    assert!(stored(&client, key).await.get("s").is_none() && stored(&client, key).await.get("fresh").is_none());

    // Names through placeholders, including a reserved word.
    let mut request = update(key, "SET #s = :v", r#"{":v":{"S":"ok"}}"#, "UPDATED_NEW");
    request.expression_attribute_names = names(&[("#s", "status")]);
    assert_eq!(
        json(&client.update_item(request).await?.attributes.unwrap().attributes),
        expect(r#"{"status":{"S":"ok"}}"#)
    );

    // DynamoDB's errors.
    let errors: [(&str, &str, &str); 10] = [
        ("SET id = :v", r#"{":v":{"S":"x"}}"#, "One or more parameter values were invalid: Cannot update attribute id. This attribute is part of the key"),
        ("SET a = :v, a.b = :v", r#"{":v":{"S":"x"}}"#, "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]"),
        ("SET a = :v REMOVE a", r#"{":v":{"S":"x"}}"#, "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a]"),
        ("SET a.b = :v, a[0] = :v", r#"{":v":{"S":"x"}}"#, "Invalid UpdateExpression: Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a, [0]]"),
        ("SET a = :v SET b = :v", r#"{":v":{"S":"x"}}"#, "Invalid UpdateExpression: The \"SET\" section can only be used once in an update expression;"),
        ("SET nope.deeper = :v", r#"{":v":{"S":"x"}}"#, "The document path provided in the update expression is invalid for update"),
        ("ADD n :v", r#"{":v":{"S":"x"}}"#, "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: STRING, typeSet: ALLOWED_FOR_ADD_OPERAND"),
        ("ADD #s :v", r#"{":v":{"N":"1"}}"#, "An operand in the update expression has an incorrect data type"),
        ("SET x = absent_attr", "{}", "The provided expression refers to an attribute that does not exist in the item"),
        ("SET a = :v +", r#"{":v":{"N":"1"}}"#, "Invalid UpdateExpression: Syntax error; token: \"<EOF>\", near: \"+\""),
    ];
    for (expression, values, message) in errors {
        let mut request = update(key, expression, values, "NONE");
        if expression.contains("#s") {
            request.expression_attribute_names = names(&[("#s", "status")]);
        }
        let (name, got) = error(client.update_item(request).await);
        assert_eq!((name.as_str(), got.as_str()), ("ValidationException", message), "{expression}");
    }
    let (_, message) =
        error(client.update_item(update(key, "SET n = n + :v", r#"{":v":{"N":"1"}}"#, "ALL_EVERYTHING")).await);
    assert!(message.starts_with("1 validation error detected: Value 'ALL_EVERYTHING' at 'returnValues'"), "{message}");
    Ok(())
}
