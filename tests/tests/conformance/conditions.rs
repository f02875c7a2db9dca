//! ConditionExpression on PutItem, DeleteItem and UpdateItem.

use tern_client::v1::{DeleteItemRequest, GetItemRequest, PutItemRequest};
use tern_client::Client;
use tern_tests::dynamo::{create_table, error, expect, json, names, wire};
use tern_tests::Region;

async fn put_if(client: &Client, item: &str, condition: &str, values: &str) -> Result<(), tern_client::Error> {
    let request = PutItemRequest {
        table_name: "things".into(),
        item: wire(item),
        condition_expression: condition.into(),
        expression_attribute_values: wire(values),
        ..Default::default()
    };
    client.put_item_request(request).await.map(|_| ())
}

/// Whether a condition holds for the stored item `{"pk":"x", ...}` (checked with a put that changes nothing).
async fn holds(client: &Client, condition: &str, values: &str) -> bool {
    let stored = client
        .get_item_request(GetItemRequest {
            table_name: "things".into(),
            key: wire(r#"{"pk":{"S":"x"}}"#),
            consistent_read: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let request = PutItemRequest {
        table_name: "things".into(),
        item: stored.item.unwrap().attributes,
        condition_expression: condition.into(),
        expression_attribute_values: wire(values),
        ..Default::default()
    };
    match client.put_item_request(request).await {
        Ok(_) => true,
        Err(e) if e.kind() == Some(tern_client::ErrorKind::ConditionalCheckFailedException) => false,
        Err(e) => panic!("{condition}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions() -> anyhow::Result<()> {
    let region = Region::start(1, &[]).await?;
    let client = region.client().await?;
    create_table(&client, "things", "pk:S", None).await?;

    // attribute_not_exists guards a create; the second create fails and changes nothing.
    put_if(&client, r#"{"pk":{"S":"x"},"v":{"N":"1"}}"#, "attribute_not_exists(pk)", "{}").await?;
    let (name, message) =
        error(put_if(&client, r#"{"pk":{"S":"x"},"v":{"N":"2"}}"#, "attribute_not_exists(pk)", "{}").await);
    assert_eq!(
        (name.as_str(), message.as_str()),
        ("ConditionalCheckFailedException", "The conditional request failed")
    );

    // ReturnValuesOnConditionCheckFailure=ALL_OLD returns the item as it is.
    let request = PutItemRequest {
        table_name: "things".into(),
        item: wire(r#"{"pk":{"S":"x"}}"#),
        condition_expression: "v = :two".into(),
        expression_attribute_values: wire(r#"{":two":{"N":"2"}}"#),
        return_values_on_condition_check_failure: "ALL_OLD".into(),
        ..Default::default()
    };
    match client.put_item_request(request).await {
        Err(tern_client::Error::Api(e)) => {
            let item = e.details.and_then(|d| d.item).expect("the old item");
            assert_eq!(json(&item.attributes), expect(r#"{"pk":{"S":"x"},"v":{"N":"1"}}"#));
        }
        other => panic!("expected ConditionalCheckFailedException, got {other:?}"),
    }

    let full = r#"{"pk":{"S":"x"},"v":{"N":"1"},"name":{"S":"widget-9"},"tags":{"SS":["red","blue"]},
        "list":{"L":[{"S":"a"},{"N":"7"}]},"bin":{"B":"AAEC"},"is_on":{"BOOL":true},"nothing":{"NULL":true}}"#;
    client
        .put_item_request(PutItemRequest { table_name: "things".into(), item: wire(full), ..Default::default() })
        .await?;
    let cases: [(&str, &str, bool); 24] = [
        ("v = :a", r#"{":a":{"N":"1.0"}}"#, true),
        ("v <> :a", r#"{":a":{"N":"1"}}"#, false),
        ("absent_attr <> :a", r#"{":a":{"N":"1"}}"#, true),
        ("absent_attr = :a", r#"{":a":{"N":"1"}}"#, false),
        ("v < :a", r#"{":a":{"N":"1.5"}}"#, true),
        ("v >= :a", r#"{":a":{"N":"1.5"}}"#, false),
        ("v < :a", r#"{":a":{"S":"9"}}"#, false),
        ("#n > :a", r#"{":a":{"S":"widget-10"}}"#, true),
        ("v BETWEEN :a AND :b", r#"{":a":{"N":"0"},":b":{"N":"1"}}"#, true),
        ("v BETWEEN :a AND :b", r#"{":a":{"N":"2"},":b":{"N":"3"}}"#, false),
        ("v IN (:a, :b)", r#"{":a":{"N":"3"},":b":{"N":"1"}}"#, true),
        ("begins_with(#n, :a)", r#"{":a":{"S":"wid"}}"#, true),
        ("begins_with(bin, :a)", r#"{":a":{"B":"AA=="}}"#, true),
        ("contains(#n, :a)", r#"{":a":{"S":"get-"}}"#, true),
        ("contains(tags, :a)", r#"{":a":{"S":"red"}}"#, true),
        ("contains(tags, :a)", r#"{":a":{"S":"green"}}"#, false),
        ("contains(#l, :a)", r#"{":a":{"N":"7"}}"#, true),
        ("size(#n) = :a", r#"{":a":{"N":"8"}}"#, true),
        ("size(tags) = :a", r#"{":a":{"N":"2"}}"#, true),
        ("attribute_type(tags, :a)", r#"{":a":{"S":"SS"}}"#, true),
        ("attribute_type(nothing, :a)", r#"{":a":{"S":"S"}}"#, false),
        ("#l[1] = :a", r#"{":a":{"N":"7"}}"#, true),
        ("v = :a OR v = :b AND is_on = :c", r#"{":a":{"N":"1"},":b":{"N":"2"},":c":{"BOOL":false}}"#, true),
        ("NOT (v = :a OR v = :b) AND is_on = :c", r#"{":a":{"N":"1"},":b":{"N":"2"},":c":{"BOOL":true}}"#, false),
    ];
    for (condition, values, expected) in cases {
        let condition = condition.replace("#n", "#nm").replace("#l", "#lst");
        let request_names = names(&[("#nm", "name"), ("#lst", "list")]);
        let used: Vec<(&str, &str)> = request_names
            .iter()
            .filter(|(k, _)| condition.contains(k.as_str()))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let stored = client
            .get_item_request(GetItemRequest {
                table_name: "things".into(),
                key: wire(r#"{"pk":{"S":"x"}}"#),
                consistent_read: true,
                ..Default::default()
            })
            .await?;
        let request = PutItemRequest {
            table_name: "things".into(),
            item: stored.item.unwrap().attributes,
            condition_expression: condition.clone(),
            expression_attribute_names: names(&used),
            expression_attribute_values: wire(values),
            ..Default::default()
        };
        let held = match client.put_item_request(request).await {
            Ok(_) => true,
            Err(e) if e.kind() == Some(tern_client::ErrorKind::ConditionalCheckFailedException) => false,
            Err(e) => panic!("{condition}: {e}"),
        };
        assert_eq!(held, expected, "{condition} with {values}");
    }
    assert!(holds(&client, "attribute_exists(nothing)", "{}").await);

    // A failed condition on DeleteItem leaves the item.
    let delete = DeleteItemRequest {
        table_name: "things".into(),
        key: wire(r#"{"pk":{"S":"x"}}"#),
        condition_expression: "v > :a".into(),
        expression_attribute_values: wire(r#"{":a":{"N":"5"}}"#),
        ..Default::default()
    };
    assert_eq!(error(client.delete_item_request(delete).await).0, "ConditionalCheckFailedException");
    assert!(holds(&client, "attribute_exists(pk)", "{}").await);

    // Errors DynamoDB gives before evaluating anything.
    let errors: [(&str, &str, &str); 7] = [
        ("name = :a", r#"{":a":{"S":"x"}}"#, "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: name"),
        ("v = :a", r#"{}"#, "Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :a"),
        ("v = :a", r#"{":a":{"N":"1"},":b":{"N":"2"}}"#, "Value provided in ExpressionAttributeValues unused in expressions: keys: {:b}"),
        ("v = = :a", r#"{":a":{"N":"1"}}"#, "Invalid ConditionExpression: Syntax error; token: \"=\", near: \"= = :a\""),
        ("v < :a", r#"{":a":{"BOOL":true}}"#, "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: <, operand type: BOOL"),
        ("v BETWEEN :a AND :b", r#"{":a":{"N":"5"},":b":{"N":"4"}}"#, "Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:5}, upper bound operand: AttributeValue: {N:4}"),
        ("attribute_type(v, :a)", r#"{":a":{"S":"NUMBER"}}"#, "Invalid ConditionExpression: Invalid attribute type name found; type: NUMBER, valid types: { B,NULL,SS,BOOL,L,BS,N,NS,S,M }"),
    ];
    for (condition, values, message) in errors {
        let (name, got) = error(put_if(&client, r#"{"pk":{"S":"y"}}"#, condition, values).await);
        assert_eq!((name.as_str(), got.as_str()), ("ValidationException", message), "{condition}");
    }
    let many: Vec<String> = (0..101).map(|i| format!(":v{i}")).collect();
    let values =
        format!("{{{}}}", many.iter().map(|v| format!("\"{v}\":{{\"N\":\"1\"}}")).collect::<Vec<_>>().join(","));
    let (_, message) =
        error(put_if(&client, r#"{"pk":{"S":"y"}}"#, &format!("v IN ({})", many.join(", ")), &values).await);
    assert_eq!(
        message,
        "Invalid ConditionExpression: The IN operator is provided with too many operands; number of operands: 101"
    );
    let (_, message) = error(
        client
            .put_item_request(PutItemRequest {
                table_name: "things".into(),
                item: wire(r#"{"pk":{"S":"y"}}"#),
                expression_attribute_values: wire(r#"{":a":{"N":"1"}}"#),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(
        message,
        "ExpressionAttributeValues can only be specified when using expressions: ConditionExpression is null"
    );
    Ok(())
}
