//! `create-table`, `describe-table`, `list-tables`, `delete-table`.

use anyhow::{bail, Context};
use clap::Args;
use serde_json::json;
use tern_client::Client;
use tern_proto::v1::{
    AttributeDefinition, CreateTableRequest, DeleteTableRequest, DescribeTableRequest, KeySchemaElement,
    ListTablesRequest,
};

use super::{input, output};

/// The one flag of `describe-table`, `delete-table`, `describe-time-to-live` and
/// `describe-continuous-backups` (each verb words its help).
#[derive(Debug, Args)]
pub struct TableName {
    /// The name of the table.
    #[arg(long)]
    pub table_name: String,
}

#[derive(Debug, Args)]
pub struct CreateTable {
    /// The name of the table to create.
    #[arg(long)]
    pub table_name: String,
    /// An array of attributes that describe the key schema for the table: `AttributeName=pk,AttributeType=S
    /// ...` (S, N or B) or a JSON array.
    #[arg(long, num_args = 1..)]
    pub attribute_definitions: Vec<String>,
    /// Specifies the attributes that make up the primary key for a table: `AttributeName=pk,KeyType=HASH ...`
    /// (HASH, then an optional RANGE) or a JSON array.
    #[arg(long, num_args = 1..)]
    pub key_schema: Vec<String>,
    /// Tern's short form of --attribute-definitions and --key-schema: the partition key as `NAME:TYPE`,
    /// e.g. `pk:S`.
    #[arg(long, conflicts_with_all = ["attribute_definitions", "key_schema"])]
    pub partition_key: Option<String>,
    /// With --partition-key: the sort key as `NAME:TYPE`, e.g. `sk:N`.
    #[arg(long, requires = "partition_key")]
    pub sort_key: Option<String>,
    /// Controls how you are charged for read and write throughput and how you manage capacity
    /// (PAY_PER_REQUEST or PROVISIONED). Accepted for compatibility; Tern has no capacity modes.
    #[arg(long, default_value = "PAY_PER_REQUEST")]
    pub billing_mode: String,
    /// Represents the provisioned throughput settings for the table. Accepted for compatibility and ignored.
    #[arg(long)]
    pub provisioned_throughput: Option<String>,
    /// The settings for DynamoDB Streams on the table: `StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES`
    /// (Tern adds `RetentionDays=N`, 1 to 365, for a long-retention stream).
    #[arg(long)]
    pub stream_specification: Option<String>,
}

/// Reads `StreamEnabled=true,StreamViewType=...[,RetentionDays=N]` or its JSON form.
pub fn stream_specification(text: &str) -> anyhow::Result<tern_proto::v1::StreamSpecification> {
    let fields = input::structure(text)?;
    let enabled = match fields.get("StreamEnabled").map(String::as_str) {
        Some("true") => true,
        Some("false") => false,
        other => bail!("StreamEnabled must be true or false, got {other:?}"),
    };
    Ok(tern_proto::v1::StreamSpecification {
        stream_enabled: enabled,
        stream_view_type: fields.get("StreamViewType").cloned().unwrap_or_default(),
        retention_days: fields
            .get("RetentionDays")
            .map(|d| d.parse())
            .transpose()
            .context("RetentionDays must be a number")?
            .unwrap_or(0),
    })
}

#[derive(Debug, Args)]
pub struct UpdateTable {
    /// The name of the table to be updated.
    #[arg(long)]
    pub table_name: String,
    /// Represents the DynamoDB Streams configuration for the table:
    /// `StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES` or `StreamEnabled=false`.
    #[arg(long)]
    pub stream_specification: Option<String>,
    /// A list of replica update actions (create or delete) for the table, as the AWS CLI takes them:
    /// `[{"Create":{"RegionName":"eu-west"}}]`, `[{"Delete":{"RegionName":"eu-west"}}]`.
    #[arg(long)]
    pub replica_updates: Option<String>,
}

/// ReplicaUpdates from the AWS CLI's JSON (or `file://`).
pub fn replica_updates(text: &str) -> anyhow::Result<Vec<tern_proto::v1::ReplicationGroupUpdate>> {
    use tern_proto::v1::replication_group_update::Action;
    use tern_proto::v1::{CreateReplicationGroupMemberAction, DeleteReplicationGroupMemberAction};
    let json = super::input::json(text)?;
    let list = json.as_array().context("ReplicaUpdates must be a JSON list")?;
    list.iter()
        .map(|update| {
            let region = |action: &serde_json::Value| -> anyhow::Result<String> {
                Ok(action
                    .get("RegionName")
                    .and_then(|r| r.as_str())
                    .context("each update needs a RegionName")?
                    .to_string())
            };
            let action = match (update.get("Create"), update.get("Delete")) {
                (Some(create), None) => {
                    Action::Create(CreateReplicationGroupMemberAction { region_name: region(create)? })
                }
                (None, Some(delete)) => {
                    Action::Delete(DeleteReplicationGroupMemberAction { region_name: region(delete)? })
                }
                _ => anyhow::bail!("each replica update needs exactly one of Create and Delete"),
            };
            Ok(tern_proto::v1::ReplicationGroupUpdate { action: Some(action) })
        })
        .collect()
}

impl UpdateTable {
    pub async fn run(&self, client: &Client) -> anyhow::Result<serde_json::Value> {
        let request = tern_proto::v1::UpdateTableRequest {
            table_name: self.table_name.clone(),
            stream_specification: self.stream_specification.as_deref().map(stream_specification).transpose()?,
            replica_updates: self.replica_updates.as_deref().map(replica_updates).transpose()?.unwrap_or_default(),
        };
        let response = client.update_table(request).await?;
        Ok(json!({ "TableDescription": response.table_description.as_ref().map(output::table) }))
    }
}

fn short_key(spec: &str, key_type: &str) -> anyhow::Result<(AttributeDefinition, KeySchemaElement)> {
    let (name, attribute_type) = spec.split_once(':').with_context(|| format!("expected NAME:TYPE, got {spec:?}"))?;
    Ok((
        AttributeDefinition { attribute_name: name.into(), attribute_type: attribute_type.into() },
        KeySchemaElement { attribute_name: name.into(), key_type: key_type.into() },
    ))
}

impl CreateTable {
    fn request(&self) -> anyhow::Result<CreateTableRequest> {
        let (attribute_definitions, key_schema) = if let Some(partition) = &self.partition_key {
            let mut keys = vec![short_key(partition, "HASH")?];
            if let Some(sort) = &self.sort_key {
                keys.push(short_key(sort, "RANGE")?);
            }
            keys.into_iter().unzip()
        } else {
            if self.attribute_definitions.is_empty() || self.key_schema.is_empty() {
                bail!("create-table needs --attribute-definitions and --key-schema, or --partition-key [--sort-key]");
            }
            let field = |m: &std::collections::BTreeMap<String, String>, k: &str| {
                m.get(k).cloned().with_context(|| format!("missing {k}"))
            };
            let definitions = input::structures(&self.attribute_definitions)?
                .iter()
                .map(|m| {
                    Ok(AttributeDefinition {
                        attribute_name: field(m, "AttributeName")?,
                        attribute_type: field(m, "AttributeType")?,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let keys = input::structures(&self.key_schema)?
                .iter()
                .map(|m| {
                    Ok(KeySchemaElement { attribute_name: field(m, "AttributeName")?, key_type: field(m, "KeyType")? })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            (definitions, keys)
        };
        Ok(CreateTableRequest {
            stream_specification: self.stream_specification.as_deref().map(stream_specification).transpose()?,
            table_name: self.table_name.clone(),
            attribute_definitions,
            key_schema,
            billing_mode: self.billing_mode.clone(),
        })
    }

    pub async fn run(&self, client: &Client) -> anyhow::Result<serde_json::Value> {
        let response = client.create_table(self.request()?).await?;
        Ok(json!({ "TableDescription": response.table_description.as_ref().map(output::table) }))
    }
}

#[derive(Debug, Args)]
pub struct ListTables {
    /// The first table name that this operation will evaluate. Use the value that was returned for
    /// LastEvaluatedTableName (or NextToken) in a previous operation, so that you can obtain the next page of
    /// results.
    #[arg(long)]
    pub exclusive_start_table_name: Option<String>,
    /// A maximum number of table names to return in each request (the page size).
    #[arg(long)]
    pub limit: Option<u32>,
    /// The total number of table names to return in the command's output; when it is reached, a NextToken
    /// is printed too.
    #[arg(long)]
    pub max_items: Option<usize>,
}

impl ListTables {
    pub async fn run(&self, client: &Client) -> anyhow::Result<serde_json::Value> {
        let mut names = Vec::new();
        let mut start = self.exclusive_start_table_name.clone().unwrap_or_default();
        loop {
            let page = client
                .list_tables(ListTablesRequest {
                    exclusive_start_table_name: start.clone(),
                    limit: self.limit.unwrap_or(0),
                })
                .await?;
            names.extend(page.table_names);
            if let Some(max) = self.max_items {
                if names.len() >= max {
                    names.truncate(max);
                    return Ok(json!({ "TableNames": names, "NextToken": names.last() }));
                }
            }
            if page.last_evaluated_table_name.is_empty() {
                return Ok(json!({ "TableNames": names }));
            }
            start = page.last_evaluated_table_name;
        }
    }
}

impl TableName {
    pub async fn describe(&self, client: &Client) -> anyhow::Result<serde_json::Value> {
        let response = client.describe_table(DescribeTableRequest { table_name: self.table_name.clone() }).await?;
        Ok(json!({ "Table": response.table.as_ref().map(output::table) }))
    }

    pub async fn delete(&self, client: &Client) -> anyhow::Result<serde_json::Value> {
        let response = client.delete_table(DeleteTableRequest { table_name: self.table_name.clone() }).await?;
        Ok(json!({ "TableDescription": response.table_description.as_ref().map(output::table) }))
    }
}

#[derive(Debug, Args)]
pub struct UpdateTimeToLive {
    /// The name of the table to be configured.
    #[arg(long)]
    pub table_name: String,
    /// Represents the settings used to enable or disable Time to Live for the specified table:
    /// `Enabled=true,AttributeName=expires_at` (Tern adds `HideExpiredItems=true`: reads skip expired items
    /// before they are deleted).
    #[arg(long)]
    pub time_to_live_specification: String,
}

impl UpdateTimeToLive {
    pub async fn run(&self, client: &Client) -> anyhow::Result<serde_json::Value> {
        let fields = input::structure(&self.time_to_live_specification)?;
        let flag = |name: &str| -> anyhow::Result<bool> {
            match fields.get(name).map(String::as_str) {
                None | Some("false") => Ok(false),
                Some("true") => Ok(true),
                Some(other) => bail!("{name} must be true or false, got {other:?}"),
            }
        };
        let spec = tern_proto::v1::TimeToLiveSpecification {
            enabled: flag("Enabled")?,
            attribute_name: fields.get("AttributeName").cloned().unwrap_or_default(),
            hide_expired_items: flag("HideExpiredItems")?,
        };
        let request = tern_proto::v1::UpdateTimeToLiveRequest {
            table_name: self.table_name.clone(),
            time_to_live_specification: Some(spec),
        };
        let spec = client.update_time_to_live(request).await?.time_to_live_specification.unwrap_or_default();
        Ok(json!({ "TimeToLiveSpecification": { "Enabled": spec.enabled, "AttributeName": spec.attribute_name } }))
    }
}

impl TableName {
    pub async fn describe_time_to_live(&self, client: &Client) -> anyhow::Result<serde_json::Value> {
        let request = tern_proto::v1::DescribeTimeToLiveRequest { table_name: self.table_name.clone() };
        let d = client.describe_time_to_live(request).await?.time_to_live_description.unwrap_or_default();
        let mut description = json!({ "TimeToLiveStatus": d.time_to_live_status });
        if !d.attribute_name.is_empty() {
            description["AttributeName"] = json!(d.attribute_name);
        }
        if d.hide_expired_items {
            description["HideExpiredItems"] = json!(true);
        }
        Ok(json!({ "TimeToLiveDescription": description }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_proto::v1::replication_group_update::Action;

    #[test]
    fn replica_updates_take_the_aws_cli_json() {
        let updates =
            replica_updates(r#"[{"Create":{"RegionName":"eu-west"}},{"Delete":{"RegionName":"ap-south"}}]"#).unwrap();
        let actions: Vec<_> = updates.into_iter().map(|u| u.action.unwrap()).collect();
        assert!(matches!(&actions[0], Action::Create(c) if c.region_name == "eu-west"));
        assert!(matches!(&actions[1], Action::Delete(d) if d.region_name == "ap-south"));
        assert!(replica_updates(r#"[{"Create":{}}]"#).is_err());
        assert!(replica_updates(r#"[{"Create":{"RegionName":"a"},"Delete":{"RegionName":"b"}}]"#).is_err());
    }
}
