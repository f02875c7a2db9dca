//! `put-item`, `get-item`, `delete-item`, `query` and `scan`.

use anyhow::Context;
use clap::Args;
use serde_json::{json, Map, Value as Json};
use tern_client::Client;
use tern_proto::v1::{DeleteItemRequest, GetItemRequest, Item, ItemPage, PutItemRequest, QueryRequest, ScanRequest};

use super::{input, output};

#[derive(Debug, Args)]
#[command(
    mut_arg("condition_expression", |a| a.help(
        "A condition that must be satisfied in order for a conditional PutItem operation to succeed"
    )),
    mut_arg("return_values_on_condition_check_failure", |a| a.help(
        "An optional parameter that returns the item attributes for a PutItem operation that failed a condition \
         check: NONE or ALL_OLD"
    )),
)]
pub struct PutItem {
    /// The name of the table to contain the item.
    #[arg(long)]
    pub table_name: String,
    /// A map of attribute name/value pairs, one for each attribute; only the primary key attributes are
    /// required. In DynamoDB JSON, or file://item.json.
    #[arg(long)]
    pub item: String,
    /// Use ReturnValues if you want to get the item attributes as they appeared before they were updated with
    /// the PutItem request: NONE (the default) or ALL_OLD.
    #[arg(long)]
    pub return_values: Option<String>,
    #[command(flatten)]
    pub condition: Conditional,
}

/// The flags of a conditional write, shared by `put-item`, `delete-item` and `update-item` (each of which
/// names its operation in the help of `--condition-expression` and
/// `--return-values-on-condition-check-failure`).
#[derive(Debug, Args)]
pub struct Conditional {
    /// A condition that must be satisfied in order for the conditional write to succeed.
    #[arg(long)]
    pub condition_expression: Option<String>,
    /// One or more substitution tokens for attribute names in an expression: a JSON object of `#placeholders`
    /// to attribute names.
    #[arg(long)]
    pub expression_attribute_names: Option<String>,
    /// One or more values that can be substituted in an expression: a DynamoDB JSON object of
    /// `:placeholders`.
    #[arg(long)]
    pub expression_attribute_values: Option<String>,
    /// An optional parameter that returns the item attributes for a write that failed a condition check:
    /// NONE or ALL_OLD.
    #[arg(long)]
    pub return_values_on_condition_check_failure: Option<String>,
}

impl Conditional {
    pub fn names(&self) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
        input::optional_names(self.expression_attribute_names.as_deref())
    }

    pub fn values(&self) -> anyhow::Result<std::collections::BTreeMap<String, tern_proto::v1::AttributeValue>> {
        input::optional_item(self.expression_attribute_values.as_deref())
    }
}

impl PutItem {
    pub async fn run(&self, client: &Client) -> anyhow::Result<Json> {
        let request = PutItemRequest {
            table_name: self.table_name.clone(),
            item: input::item(&self.item)?,
            return_values: self.return_values.clone().unwrap_or_default(),
            condition_expression: self.condition.condition_expression.clone().unwrap_or_default(),
            expression_attribute_names: self.condition.names()?,
            expression_attribute_values: self.condition.values()?,
            return_values_on_condition_check_failure: self
                .condition
                .return_values_on_condition_check_failure
                .clone()
                .unwrap_or_default(),
        };
        let response = client.put_item_request(request).await?;
        Ok(output::write_result(response.attributes.as_ref(), response.item_version.as_ref()))
    }
}

#[derive(Debug, Args)]
pub struct GetItem {
    /// The name of the table containing the requested item.
    #[arg(long)]
    pub table_name: String,
    /// A map of attribute names to AttributeValue objects, representing the primary key of the item to
    /// retrieve. In DynamoDB JSON, or file://key.json.
    #[arg(long)]
    pub key: String,
    /// Determines the read consistency model: with it, the operation uses strongly consistent reads;
    /// otherwise, eventually consistent reads.
    #[arg(long)]
    pub consistent_read: bool,
    /// Also print the item's version (write timestamp and origin region).
    #[arg(long)]
    pub return_item_version: bool,
    /// A string that identifies one or more attributes to retrieve from the table.
    #[arg(long)]
    pub projection_expression: Option<String>,
    /// One or more substitution tokens for attribute names in an expression: a JSON object of `#placeholders`
    /// to attribute names.
    #[arg(long)]
    pub expression_attribute_names: Option<String>,
}

impl GetItem {
    pub async fn run(&self, client: &Client) -> anyhow::Result<Json> {
        let request = GetItemRequest {
            table_name: self.table_name.clone(),
            key: input::item(&self.key)?,
            consistent_read: self.consistent_read,
            return_item_version: self.return_item_version,
            projection_expression: self.projection_expression.clone().unwrap_or_default(),
            expression_attribute_names: input::optional_names(self.expression_attribute_names.as_deref())?,
        };
        let response = client.get_item_request(request).await?;
        let mut out = Map::new();
        if let Some(item) = &response.item {
            out.insert("Item".into(), output::item(item));
        }
        if let Some(version) = &response.item_version {
            out.insert("ItemVersion".into(), output::version(version));
        }
        Ok(Json::Object(out))
    }
}

#[derive(Debug, Args)]
#[command(
    mut_arg("condition_expression", |a| a.help(
        "A condition that must be satisfied in order for a conditional DeleteItem to succeed"
    )),
    mut_arg("return_values_on_condition_check_failure", |a| a.help(
        "An optional parameter that returns the item attributes for a DeleteItem operation that failed a \
         condition check: NONE or ALL_OLD"
    )),
)]
pub struct DeleteItem {
    /// The name of the table from which to delete the item.
    #[arg(long)]
    pub table_name: String,
    /// A map of attribute names to AttributeValue objects, representing the primary key of the item to
    /// delete. In DynamoDB JSON, or file://key.json.
    #[arg(long)]
    pub key: String,
    /// Use ReturnValues if you want to get the item attributes as they appeared before they were deleted:
    /// NONE (the default) or ALL_OLD.
    #[arg(long)]
    pub return_values: Option<String>,
    #[command(flatten)]
    pub condition: Conditional,
}

impl DeleteItem {
    pub async fn run(&self, client: &Client) -> anyhow::Result<Json> {
        let request = DeleteItemRequest {
            table_name: self.table_name.clone(),
            key: input::item(&self.key)?,
            return_values: self.return_values.clone().unwrap_or_default(),
            condition_expression: self.condition.condition_expression.clone().unwrap_or_default(),
            expression_attribute_names: self.condition.names()?,
            expression_attribute_values: self.condition.values()?,
            return_values_on_condition_check_failure: self
                .condition
                .return_values_on_condition_check_failure
                .clone()
                .unwrap_or_default(),
        };
        let response = client.delete_item_request(request).await?;
        Ok(output::write_result(response.attributes.as_ref(), response.item_version.as_ref()))
    }
}

/// The AWS CLI's pagination flags, shared by `query` and `scan`.
#[derive(Debug, Args)]
pub struct Paging {
    /// The maximum number of items to evaluate (not necessarily the number of matching items) in each
    /// request: DynamoDB's Limit.
    #[arg(long)]
    pub limit: Option<u32>,
    /// The primary key of the first item that this operation will evaluate. Use the value that was returned
    /// for LastEvaluatedKey in the previous operation. In DynamoDB JSON.
    #[arg(long)]
    pub exclusive_start_key: Option<String>,
    /// The total number of items to return in the command's output. If more items are available, a
    /// NextToken is provided in the output; pass it to --starting-token to resume.
    #[arg(long)]
    pub max_items: Option<usize>,
    /// A token to specify where to start paginating. This is the NextToken from a previously truncated
    /// response.
    #[arg(long)]
    pub starting_token: Option<String>,
    /// Disable automatic pagination: fetch one page only, printing its LastEvaluatedKey.
    #[arg(long)]
    pub no_paginate: bool,
    /// Determines the read consistency model: with it, the operation uses strongly consistent reads;
    /// otherwise, eventually consistent reads.
    #[arg(long)]
    pub consistent_read: bool,
    /// Also print each item's version (write timestamp and origin region).
    #[arg(long)]
    pub return_item_versions: bool,
    /// A string that contains conditions applied after the items are read, but before the data is returned
    /// to you; items that do not satisfy them are not returned.
    #[arg(long)]
    pub filter_expression: Option<String>,
    /// A string that identifies one or more attributes to retrieve from the table.
    #[arg(long)]
    pub projection_expression: Option<String>,
    /// The attributes to be returned in the result: ALL_ATTRIBUTES, SPECIFIC_ATTRIBUTES or COUNT.
    #[arg(long)]
    pub select: Option<String>,
}

impl Paging {
    fn start_key(&self) -> anyhow::Result<Option<Item>> {
        let text = match (&self.starting_token, &self.exclusive_start_key) {
            (Some(token), _) => {
                use base64::Engine;
                let bytes =
                    base64::engine::general_purpose::STANDARD.decode(token).context("invalid --starting-token")?;
                String::from_utf8(bytes).context("invalid --starting-token")?
            }
            (None, Some(key)) => key.clone(),
            (None, None) => return Ok(None),
        };
        Ok(Some(Item { attributes: input::item(&text)? }))
    }

    /// Fetches pages until done, --max-items, or one page with --no-paginate; prints like the AWS CLI.
    async fn collect<F, Fut>(&self, mut fetch: F) -> anyhow::Result<Json>
    where
        F: FnMut(Option<Item>) -> Fut,
        Fut: std::future::Future<Output = Result<ItemPage, tern_client::Error>>,
    {
        let mut start = self.start_key()?;
        let (mut items, mut versions, mut count, mut scanned) = (Vec::new(), Vec::new(), 0u64, 0u64);
        let mut last_key = None;
        loop {
            let page = fetch(start.clone()).await?;
            scanned += page.scanned_count as u64;
            // With Select=COUNT a page has a count and no items.
            if page.items.is_empty() {
                count += page.count as u64;
            }
            for (i, item) in page.items.iter().enumerate() {
                if self.max_items.is_some_and(|max| items.len() >= max) {
                    break;
                }
                items.push(output::item(item));
                if let Some(version) = page.item_versions.get(i) {
                    versions.push(output::version(version));
                }
                count += 1;
                last_key = Some(item.clone());
            }
            if self.no_paginate {
                let mut out = json!({ "Items": items, "Count": count, "ScannedCount": scanned });
                if let Some(key) = &page.last_evaluated_key {
                    out["LastEvaluatedKey"] = output::item(key);
                }
                if self.return_item_versions {
                    out["ItemVersions"] = json!(versions);
                }
                return Ok(out);
            }
            let full = self.max_items.is_some_and(|max| items.len() >= max);
            let mut out = json!({ "Items": items, "Count": count, "ScannedCount": scanned });
            if self.return_item_versions {
                out["ItemVersions"] = json!(versions);
            }
            if full && (page.last_evaluated_key.is_some() || last_key.as_ref() != page.items.last()) {
                let key = last_key.take().map(|item| output::item(&item)).unwrap_or(Json::Null);
                use base64::Engine;
                out["NextToken"] = json!(base64::engine::general_purpose::STANDARD.encode(key.to_string()));
                return Ok(out);
            }
            match page.last_evaluated_key {
                Some(key) if !full => start = Some(key),
                _ => return Ok(out),
            }
        }
    }
}

#[derive(Debug, Args)]
pub struct Query {
    /// The name of the table containing the requested items.
    #[arg(long)]
    pub table_name: String,
    /// The condition that specifies the key values for items to be retrieved by the Query action.
    #[arg(long)]
    pub key_condition_expression: String,
    /// One or more values that can be substituted in an expression: a DynamoDB JSON object of
    /// `:placeholders`.
    #[arg(long)]
    pub expression_attribute_values: Option<String>,
    /// One or more substitution tokens for attribute names in an expression: a JSON object of `#placeholders`
    /// to attribute names.
    #[arg(long)]
    pub expression_attribute_names: Option<String>,
    /// Traverse in descending order of the sort key (DynamoDB's ScanIndexForward=false).
    #[arg(long, conflicts_with = "scan_index_forward")]
    pub no_scan_index_forward: bool,
    /// Traverse in ascending order of the sort key (the default).
    #[arg(long)]
    pub scan_index_forward: bool,
    #[command(flatten)]
    pub paging: Paging,
}

impl Query {
    pub async fn run(&self, client: &Client) -> anyhow::Result<Json> {
        let request = QueryRequest {
            table_name: self.table_name.clone(),
            key_condition_expression: self.key_condition_expression.clone(),
            expression_attribute_names: input::optional_names(self.expression_attribute_names.as_deref())?,
            expression_attribute_values: input::optional_item(self.expression_attribute_values.as_deref())?,
            scan_index_forward: Some(!self.no_scan_index_forward),
            limit: self.paging.limit.unwrap_or(0),
            exclusive_start_key: None,
            consistent_read: self.paging.consistent_read,
            return_item_versions: self.paging.return_item_versions,
            filter_expression: self.paging.filter_expression.clone().unwrap_or_default(),
            projection_expression: self.paging.projection_expression.clone().unwrap_or_default(),
            select: self.paging.select.clone().unwrap_or_default(),
        };
        self.paging
            .collect(|start| {
                let mut request = request.clone();
                request.exclusive_start_key = start;
                async move { client.query(request).await }
            })
            .await
    }
}

#[derive(Debug, Args)]
pub struct Scan {
    /// The name of the table containing the requested items.
    #[arg(long)]
    pub table_name: String,
    /// One or more values that can be substituted in an expression: a DynamoDB JSON object of
    /// `:placeholders`.
    #[arg(long)]
    pub expression_attribute_values: Option<String>,
    /// One or more substitution tokens for attribute names in an expression: a JSON object of `#placeholders`
    /// to attribute names.
    #[arg(long)]
    pub expression_attribute_names: Option<String>,
    /// For a parallel Scan request, Segment identifies an individual segment to be scanned by an application
    /// worker (0-based).
    #[arg(long, requires = "total_segments")]
    pub segment: Option<u32>,
    /// For a parallel Scan request, TotalSegments represents the total number of segments into which the
    /// Scan operation will be divided.
    #[arg(long, requires = "segment")]
    pub total_segments: Option<u32>,
    #[command(flatten)]
    pub paging: Paging,
}

impl Scan {
    pub async fn run(&self, client: &Client) -> anyhow::Result<Json> {
        let request = ScanRequest {
            table_name: self.table_name.clone(),
            limit: self.paging.limit.unwrap_or(0),
            exclusive_start_key: None,
            consistent_read: self.paging.consistent_read,
            return_item_versions: self.paging.return_item_versions,
            filter_expression: self.paging.filter_expression.clone().unwrap_or_default(),
            projection_expression: self.paging.projection_expression.clone().unwrap_or_default(),
            expression_attribute_names: input::optional_names(self.expression_attribute_names.as_deref())?,
            expression_attribute_values: input::optional_item(self.expression_attribute_values.as_deref())?,
            select: self.paging.select.clone().unwrap_or_default(),
            segment: self.segment,
            total_segments: self.total_segments,
        };
        self.paging
            .collect(|start| {
                let mut request = request.clone();
                request.exclusive_start_key = start;
                async move { client.scan(request).await }
            })
            .await
    }
}
