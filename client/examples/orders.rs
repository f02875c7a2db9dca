//! Writes orders as Rust structs, reads one back strongly consistent, and queries a customer's orders
//! newest first. Run it against a playground:
//!
//! ```sh
//! scripts/playground.sh &
//! cargo run -p tern-client --example orders -- 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003
//! ```

use serde::{Deserialize, Serialize};
use tern_client::v1::{AttributeDefinition, CreateTableRequest, KeySchemaElement, QueryRequest};
use tern_client::{AttributeValue, Client, ErrorKind, Item};

#[derive(Debug, Serialize, Deserialize)]
struct Order {
    customer: String,
    order: u64,
    total: f64,
    items: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let endpoints = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:7001".into());
    let client = Client::connect([endpoints]).await?;

    let table = CreateTableRequest {
        table_name: "orders".into(),
        attribute_definitions: vec![
            AttributeDefinition { attribute_name: "customer".into(), attribute_type: "S".into() },
            AttributeDefinition { attribute_name: "order".into(), attribute_type: "N".into() },
        ],
        key_schema: vec![
            KeySchemaElement { attribute_name: "customer".into(), key_type: "HASH".into() },
            KeySchemaElement { attribute_name: "order".into(), key_type: "RANGE".into() },
        ],
        billing_mode: String::new(),
        stream_specification: None,
    };
    match client.create_table(table).await {
        Ok(_) => println!("created table orders"),
        Err(e) if e.kind() == Some(ErrorKind::ResourceInUseException) => println!("table orders exists"),
        Err(e) => return Err(e.into()),
    }

    for order in 1..=5u64 {
        let value =
            Order { customer: "c1".into(), order, total: 10.0 * order as f64, items: vec![format!("sku-{order}")] };
        let version = client.put("orders", &value).await?;
        println!("put order {order} at {} in {}", version.write_timestamp_micros, version.origin_region);
    }

    let key = serde_json::json!({ "customer": "c1", "order": 3 });
    let order: Option<Order> = client.get("orders", &key, true).await?;
    println!("order 3: {order:?}");

    let values: Item = [(":c".to_string(), AttributeValue::from("c1"))].into();
    let newest_first = QueryRequest {
        table_name: "orders".into(),
        key_condition_expression: "customer = :c".into(),
        expression_attribute_values: tern_client::v1_item(&values),
        scan_index_forward: Some(false),
        ..Default::default()
    };
    for item in client.query_all(newest_first).await? {
        let order: Order = tern_client::from_item(item)?;
        println!("  order {} total {}", order.order, order.total);
    }
    Ok(())
}
