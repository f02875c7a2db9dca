//! CRUD, Query order and pagination through the client library, against three real nodes.

use tern_client::v1::{
    AttributeDefinition, CreateTableRequest, DeleteTableRequest, KeySchemaElement, QueryRequest, ScanRequest,
};
use tern_client::{AttributeValue, Client, ErrorKind, Item, Number};
use tern_tests::Region;

fn table(name: &str, pk: (&str, &str), sk: Option<(&str, &str)>) -> CreateTableRequest {
    let mut request = CreateTableRequest {
        table_name: name.into(),
        attribute_definitions: vec![AttributeDefinition { attribute_name: pk.0.into(), attribute_type: pk.1.into() }],
        key_schema: vec![KeySchemaElement { attribute_name: pk.0.into(), key_type: "HASH".into() }],
        billing_mode: String::new(),
        stream_specification: None,
    };
    if let Some((name, kind)) = sk {
        request
            .attribute_definitions
            .push(AttributeDefinition { attribute_name: name.into(), attribute_type: kind.into() });
        request.key_schema.push(KeySchemaElement { attribute_name: name.into(), key_type: "RANGE".into() });
    }
    request
}

fn n(text: &str) -> AttributeValue {
    AttributeValue::N(text.parse::<Number>().unwrap())
}

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.into())
}

fn item(pairs: &[(&str, AttributeValue)]) -> Item {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn query(table: &str, expression: &str, values: &[(&str, AttributeValue)]) -> QueryRequest {
    QueryRequest {
        table_name: table.into(),
        key_condition_expression: expression.into(),
        expression_attribute_values: tern_client::v1_item(&item(values)),
        // Reads right after writes: only strongly consistent ones are sure to see them.
        consistent_read: true,
        ..Default::default()
    }
}

fn sort_keys(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .map(|i| match &i["sk"] {
            AttributeValue::N(n) => n.to_string(),
            AttributeValue::S(s) => s.clone(),
            other => format!("{other:?}"),
        })
        .collect()
}

async fn crud(client: &Client) -> anyhow::Result<()> {
    client.create_table(table("orders", ("pk", "S"), Some(("sk", "N")))).await?;
    let first = client.put_item("orders", item(&[("pk", s("c1")), ("sk", n("1")), ("total", n("12.50"))])).await?;
    let second = client.put_item("orders", item(&[("pk", s("c1")), ("sk", n("1")), ("total", n("13"))])).await?;
    assert!(second.write_timestamp_micros > first.write_timestamp_micros, "versions rise: {first:?} then {second:?}");
    assert_eq!(second.origin_region, "e2e");

    let key = item(&[("pk", s("c1")), ("sk", n("1.0"))]);
    let (found, version) = client.get_item("orders", key.clone(), true).await?.expect("the item exists");
    assert_eq!(found, item(&[("pk", s("c1")), ("sk", n("1")), ("total", n("13"))]));
    assert_eq!(version, second);

    let deleted = client.delete_item("orders", key.clone()).await?;
    assert!(deleted.write_timestamp_micros > second.write_timestamp_micros);
    assert_eq!(client.get_item("orders", key, true).await?, None);
    Ok(())
}

/// A key condition, its values (besides `:p`), and the sort keys it selects in order.
type KeyConditionCase = (&'static str, Vec<(&'static str, AttributeValue)>, Vec<&'static str>);

async fn query_order_and_pages(client: &Client) -> anyhow::Result<()> {
    let numbers = ["10", "-3", "2.5", "0", "-0.5", "1E+20", "7", "-100", "0.001", "3"];
    for sk in numbers {
        client.put_item("orders", item(&[("pk", s("c2")), ("sk", n(sk))])).await?;
    }
    client.put_item("orders", item(&[("pk", s("c3")), ("sk", n("1"))])).await?;
    let ascending = ["-100", "-3", "-0.5", "0", "0.001", "2.5", "3", "7", "10", "100000000000000000000"];

    let all = client.query_all(query("orders", "pk = :p", &[(":p", s("c2"))])).await?;
    assert_eq!(sort_keys(&all), ascending);

    let mut reverse = query("orders", "pk = :p", &[(":p", s("c2"))]);
    reverse.scan_index_forward = Some(false);
    let descending: Vec<_> = ascending.iter().rev().map(|s| s.to_string()).collect();
    assert_eq!(sort_keys(&client.query_all(reverse.clone()).await?), descending);

    // Pages of three, forward and reverse, with LastEvaluatedKey carried over.
    for (request, expected) in [
        (query("orders", "pk = :p", &[(":p", s("c2"))]), ascending.to_vec()),
        (reverse, descending.iter().map(|s| s.as_str()).collect()),
    ] {
        let mut request = request;
        request.limit = 3;
        let mut pages = Vec::new();
        loop {
            let page = client.query(request.clone()).await?;
            let items: Vec<Item> =
                page.items.into_iter().map(|i| tern_client::item_from(i.attributes).unwrap()).collect();
            pages.push(sort_keys(&items));
            match page.last_evaluated_key {
                Some(key) => request.exclusive_start_key = Some(key),
                None => break,
            }
        }
        let expected_pages: Vec<Vec<String>> =
            expected.chunks(3).map(|c| c.iter().map(|s| s.to_string()).collect()).collect();
        assert_eq!(pages, expected_pages);
    }

    let cases: [KeyConditionCase; 6] = [
        ("pk = :p AND sk < :v", vec![(":v", n("0"))], vec!["-100", "-3", "-0.5"]),
        ("pk = :p AND sk <= :v", vec![(":v", n("0"))], vec!["-100", "-3", "-0.5", "0"]),
        ("pk = :p AND sk > :v", vec![(":v", n("7"))], vec!["10", "100000000000000000000"]),
        ("pk = :p AND sk >= :v", vec![(":v", n("7"))], vec!["7", "10", "100000000000000000000"]),
        ("pk = :p AND sk = :v", vec![(":v", n("2.50"))], vec!["2.5"]),
        (
            "pk = :p AND sk BETWEEN :a AND :b",
            vec![(":a", n("-0.5")), (":b", n("3"))],
            vec!["-0.5", "0", "0.001", "2.5", "3"],
        ),
    ];
    for (expression, mut values, expected) in cases {
        values.push((":p", s("c2")));
        let found = client.query_all(query("orders", expression, &values)).await?;
        assert_eq!(sort_keys(&found), expected, "{expression}");
    }

    client.create_table(table("files", ("dir", "S"), Some(("sk", "S")))).await?;
    for name in ["a/x", "a/y", "a", "ab", "b/z", "a/\u{0}"] {
        client.put_item("files", item(&[("dir", s("root")), ("sk", s(name))])).await?;
    }
    let mut prefixed = query("files", "dir = :d AND begins_with(sk, :p)", &[(":d", s("root")), (":p", s("a/"))]);
    assert_eq!(sort_keys(&client.query_all(prefixed.clone()).await?), ["a/\u{0}", "a/x", "a/y"]);
    prefixed.key_condition_expression = "#d = :d AND begins_with(#s, :p)".into();
    prefixed.expression_attribute_names =
        [("#d".to_string(), "dir".to_string()), ("#s".to_string(), "sk".to_string())].into();
    assert_eq!(sort_keys(&client.query_all(prefixed).await?), ["a/\u{0}", "a/x", "a/y"]);

    let scanned = client
        .scan_all(ScanRequest { table_name: "orders".into(), limit: 4, consistent_read: true, ..Default::default() })
        .await?;
    assert_eq!(scanned.len(), 11);
    Ok(())
}

async fn tables_and_errors(client: &Client) -> anyhow::Result<()> {
    let listed = client.list_tables(Default::default()).await?;
    assert_eq!(listed.table_names, ["files", "orders"]);

    let again = client.create_table(table("orders", ("pk", "S"), None)).await.unwrap_err();
    assert_eq!(again.kind(), Some(ErrorKind::ResourceInUseException));
    let missing = client.put_item("nope", item(&[("pk", s("a"))])).await.unwrap_err();
    assert_eq!(missing.kind(), Some(ErrorKind::ResourceNotFoundException));
    let mistyped = client.put_item("orders", item(&[("pk", s("a")), ("sk", s("1"))])).await.unwrap_err();
    assert_eq!(mistyped.to_string(), "ValidationException: One or more parameter values were invalid: Type mismatch for key sk expected: N actual: S");
    let too_big = client
        .put_item("orders", item(&[("pk", s("a")), ("sk", n("1")), ("blob", s(&"x".repeat(400 * 1024)))]))
        .await
        .unwrap_err();
    assert_eq!(too_big.to_string(), "ValidationException: Item size has exceeded the maximum allowed size");

    let deleted = client.delete_table(DeleteTableRequest { table_name: "orders".into() }).await?;
    assert_eq!(deleted.table_description.unwrap().table_status, "DELETING");
    client.create_table(table("orders", ("pk", "S"), Some(("sk", "N")))).await?;
    let after = client.query_all(query("orders", "pk = :p", &[(":p", s("c2"))])).await?;
    assert!(after.is_empty(), "a deleted table's items go with it: {after:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_tables_queries_and_errors() -> anyhow::Result<()> {
    let region = Region::start(3, &[]).await?;
    let client = region.client().await?;
    crud(&client).await?;
    query_order_and_pages(&client).await?;
    tables_and_errors(&client).await?;

    // A write sent to a follower reaches the leader without the caller noticing.
    let leader = region.wait_for_leader(std::time::Duration::from_secs(5)).await?;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let direct = region.node_client(follower).await?;
    direct.put_item("files", item(&[("dir", s("root")), ("sk", s("via-follower"))])).await?;
    let found = direct.get_item("files", item(&[("dir", s("root")), ("sk", s("via-follower"))]), true).await?;
    assert!(found.is_some(), "a strongly consistent read through a follower sees the write");

    // Every node serves the same data from its own state once it has applied the last write.
    let applied = region.status(leader).await?.last_applied_index;
    for id in [1, 2, 3] {
        region.wait_applied(id, applied, std::time::Duration::from_secs(10)).await?;
        let local = region.node_client(id).await?;
        let mut local_query = query("files", "dir = :d", &[(":d", s("root"))]);
        local_query.consistent_read = false;
        let files = local.query_all(local_query).await?;
        assert_eq!(files.len(), 7, "node {id}");
    }
    Ok(())
}
