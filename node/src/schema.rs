//! A table's key schema: validating CreateTable, and finding an item's key and storage key.

use std::collections::BTreeMap;

use tern_proto::v1::attribute_value::Value as Wire;
use tern_proto::v1::{AttributeValue, CreateTableRequest, TableDescription};
use tern_proto::ApiError;

use tern_proto::internal::StoredTable;

use crate::keyspace::item_key;

/// Longest partition key value, in bytes.
pub const MAX_PARTITION_KEY_BYTES: usize = 2048;
/// Longest sort key value, in bytes.
pub const MAX_SORT_KEY_BYTES: usize = 1024;

/// One key attribute: its name and type (`S`, `N` or `B`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAttribute {
    pub name: String,
    pub attribute_type: String,
}

/// The key schema of a table and the id that prefixes its storage keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    pub table_id: u64,
    pub partition_key: KeyAttribute,
    pub sort_key: Option<KeyAttribute>,
}

impl TableSchema {
    /// The schema of a stored table.
    pub fn of(stored: &StoredTable) -> Result<Self, ApiError> {
        let description = stored.description.as_ref().ok_or_else(|| ApiError::internal("table without description"))?;
        Self::from_description(stored.table_id, description)
    }

    /// The schema described by a table description (whose CreateTable was validated).
    pub fn from_description(table_id: u64, description: &TableDescription) -> Result<Self, ApiError> {
        let attribute_type = |name: &str| {
            description
                .attribute_definitions
                .iter()
                .find(|d| d.attribute_name == name)
                .map(|d| d.attribute_type.clone())
                .ok_or_else(|| ApiError::internal(format!("no attribute definition for key {name}")))
        };
        let key = |key_type: &str| -> Result<Option<KeyAttribute>, ApiError> {
            description
                .key_schema
                .iter()
                .find(|k| k.key_type == key_type)
                .map(|k| {
                    Ok(KeyAttribute {
                        name: k.attribute_name.clone(),
                        attribute_type: attribute_type(&k.attribute_name)?,
                    })
                })
                .transpose()
        };
        Ok(TableSchema {
            table_id,
            partition_key: key("HASH")?.ok_or_else(|| ApiError::internal("table has no HASH key"))?,
            sort_key: key("RANGE")?,
        })
    }

    /// The key attributes, partition key first.
    pub fn key_attributes(&self) -> impl Iterator<Item = &KeyAttribute> {
        std::iter::once(&self.partition_key).chain(self.sort_key.as_ref())
    }

    /// The storage key of an item or a key; checks that the key attributes are there, typed as the
    /// schema says, non-empty and within DynamoDB's size limits.
    pub fn storage_key(&self, attributes: &BTreeMap<String, AttributeValue>) -> Result<Vec<u8>, ApiError> {
        let value = |attribute: &KeyAttribute, limit| {
            let value = attributes.get(&attribute.name).ok_or_else(|| {
                ApiError::validation(format!(
                    "One or more parameter values were invalid: Missing the key {} in the item",
                    attribute.name
                ))
            })?;
            check_key_value(attribute, value, limit)?;
            Ok::<_, ApiError>(value)
        };
        let mut key = self.partition_prefix(value(&self.partition_key, MAX_PARTITION_KEY_BYTES)?)?;
        if let Some(sort_key) = &self.sort_key {
            item_key::encode_key_value(&mut key, value(sort_key, MAX_SORT_KEY_BYTES)?)?;
        }
        Ok(key)
    }

    /// The prefix of every storage key in one partition.
    pub fn partition_prefix(&self, partition_value: &AttributeValue) -> Result<Vec<u8>, ApiError> {
        item_key::partition_prefix(self.table_id, partition_value)
    }

    /// The key attributes a storage key of this table holds.
    pub fn key_of_storage_key(&self, key: &[u8]) -> Option<BTreeMap<String, AttributeValue>> {
        let sort_type = self.sort_key.as_ref().map(|k| k.attribute_type.as_str());
        let (partition, sort) = item_key::decode_storage_key(key, &self.partition_key.attribute_type, sort_type)?;
        let mut attributes = BTreeMap::from([(self.partition_key.name.clone(), partition)]);
        if let (Some(attribute), Some(value)) = (&self.sort_key, sort) {
            attributes.insert(attribute.name.clone(), value);
        }
        Some(attributes)
    }

    /// Checks that `key` holds exactly the key attributes (GetItem, DeleteItem, ExclusiveStartKey).
    pub fn check_key_only(&self, key: &BTreeMap<String, AttributeValue>) -> Result<(), ApiError> {
        let expected = self.key_attributes().count();
        if key.len() != expected || self.key_attributes().any(|k| !key.contains_key(&k.name)) {
            return Err(ApiError::validation("The provided key element does not match the schema"));
        }
        Ok(())
    }

    /// The key attributes of an item.
    pub fn key_of(&self, item: &BTreeMap<String, AttributeValue>) -> BTreeMap<String, AttributeValue> {
        self.key_attributes().filter_map(|k| item.get(&k.name).map(|v| (k.name.clone(), v.clone()))).collect()
    }
}

/// Checks one key value against its attribute's type and size limit.
pub fn check_key_value(attribute: &KeyAttribute, value: &AttributeValue, limit: usize) -> Result<(), ApiError> {
    let (actual, len) = match &value.value {
        Some(Wire::S(s)) => ("S", s.len()),
        Some(Wire::N(n)) => ("N", n.len()),
        Some(Wire::B(b)) => ("B", b.len()),
        Some(other) => (wire_type_name(other), 1),
        None => ("", 0),
    };
    if actual != attribute.attribute_type {
        return Err(ApiError::validation(format!(
            "One or more parameter values were invalid: Type mismatch for key {} expected: {} actual: {}",
            attribute.name, attribute.attribute_type, actual
        )));
    }
    if len == 0 {
        return Err(ApiError::validation(format!(
            "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty {} value. Key: {}",
            if actual == "S" { "string" } else { "binary" },
            attribute.name
        )));
    }
    if len > limit {
        let which = if limit == MAX_PARTITION_KEY_BYTES { "partition" } else { "sort" };
        return Err(ApiError::validation(format!(
            "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of {limit} bytes for {which} key {}",
            attribute.name
        )));
    }
    Ok(())
}

fn wire_type_name(value: &Wire) -> &'static str {
    match value {
        Wire::S(_) => "S",
        Wire::N(_) => "N",
        Wire::B(_) => "B",
        Wire::Bool(_) => "BOOL",
        Wire::Null(_) => "NULL",
        Wire::L(_) => "L",
        Wire::M(_) => "M",
        Wire::Ss(_) => "SS",
        Wire::Ns(_) => "NS",
        Wire::Bs(_) => "BS",
    }
}

/// Checks a table name against DynamoDB's rules: 3 to 255 characters of `a-z A-Z 0-9 _ - .`.
pub fn check_table_name(name: &str) -> Result<(), ApiError> {
    let valid_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if name.len() < 3 || name.len() > 255 || !valid_chars {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{name}' at 'tableName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length between 3 and 255"
        )));
    }
    Ok(())
}

/// Validates a CreateTable request as DynamoDB does.
pub fn check_create_table(request: &CreateTableRequest) -> Result<(), ApiError> {
    check_table_name(&request.table_name)?;
    let invalid = |why: String| ApiError::validation(format!("One or more parameter values were invalid: {why}"));
    let hash: Vec<_> = request.key_schema.iter().filter(|k| k.key_type == "HASH").collect();
    let range: Vec<_> = request.key_schema.iter().filter(|k| k.key_type == "RANGE").collect();
    if let Some(bad) = request.key_schema.iter().find(|k| k.key_type != "HASH" && k.key_type != "RANGE") {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{}' at 'keySchema.1.member.keyType' failed to satisfy constraint: Member must satisfy enum value set: [HASH, RANGE]",
            bad.key_type
        )));
    }
    if hash.len() != 1 || range.len() > 1 || request.key_schema.len() > 2 {
        return Err(invalid("Invalid KeySchema: exactly one HASH key and at most one RANGE key are allowed".into()));
    }
    if request.key_schema.first().map(|k| k.key_type.as_str()) != Some("HASH") {
        return Err(invalid("Invalid KeySchema: The first KeySchemaElement is not a HASH key type".into()));
    }
    if range.first().is_some_and(|r| r.attribute_name == hash[0].attribute_name) {
        return Err(invalid("Both the Hash Key and the Range Key element in the KeySchema have the same name".into()));
    }
    for definition in &request.attribute_definitions {
        if !matches!(definition.attribute_type.as_str(), "S" | "N" | "B") {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{}' at 'attributeDefinitions.1.member.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]",
                definition.attribute_type
            )));
        }
    }
    let mut names: Vec<_> = request.attribute_definitions.iter().map(|d| d.attribute_name.as_str()).collect();
    names.sort();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(invalid("Cannot have two attributes with the same name".into()));
    }
    let key_names: Vec<_> = request.key_schema.iter().map(|k| k.attribute_name.as_str()).collect();
    if let Some(missing) = key_names.iter().find(|k| !names.contains(k)) {
        return Err(invalid(format!("Some index key attributes are not defined in AttributeDefinitions. Keys: [{missing}], AttributeDefinitions: [{}]", names.join(", "))));
    }
    if names.len() != key_names.len() {
        return Err(invalid("Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions".into()));
    }
    Ok(())
}

/// The refusal of an item operation on a table being restored (DynamoDB's answer for a table that is
/// CREATING).
pub fn being_restored(table: &str) -> ApiError {
    ApiError::not_found(format!(
        "Requested resource not found: Table: {table} is being restored (status CREATING) and serves items once ACTIVE"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_proto::v1::{AttributeDefinition, KeySchemaElement};

    fn request(defs: &[(&str, &str)], keys: &[(&str, &str)]) -> CreateTableRequest {
        CreateTableRequest {
            table_name: "orders".into(),
            attribute_definitions: defs
                .iter()
                .map(|(n, t)| AttributeDefinition { attribute_name: n.to_string(), attribute_type: t.to_string() })
                .collect(),
            key_schema: keys
                .iter()
                .map(|(n, t)| KeySchemaElement { attribute_name: n.to_string(), key_type: t.to_string() })
                .collect(),
            billing_mode: String::new(),
            stream_specification: None,
        }
    }

    #[test]
    fn accepts_a_composite_key() {
        assert_eq!(
            check_create_table(&request(&[("pk", "S"), ("sk", "N")], &[("pk", "HASH"), ("sk", "RANGE")])),
            Ok(())
        );
    }

    #[test]
    fn rejects_bad_schemas() {
        let cases = [
            request(&[("pk", "S")], &[("pk", "RANGE")]),
            request(&[("pk", "S"), ("x", "S")], &[("pk", "HASH")]),
            request(&[("pk", "BOOL")], &[("pk", "HASH")]),
            request(&[("pk", "S")], &[("pk", "HASH"), ("sk", "RANGE")]),
            request(&[("pk", "S")], &[("pk", "HASH"), ("pk", "RANGE")]),
        ];
        for case in cases {
            let error = check_create_table(&case).unwrap_err();
            assert_eq!(error.kind, tern_proto::ErrorKind::ValidationException, "{case:?}");
        }
        let mut bad_name = request(&[("pk", "S")], &[("pk", "HASH")]);
        bad_name.table_name = "a!".into();
        assert!(check_table_name(&bad_name.table_name).is_err());
    }

    #[test]
    fn key_values_are_checked_against_the_schema() {
        let schema = TableSchema {
            table_id: 7,
            partition_key: KeyAttribute { name: "pk".into(), attribute_type: "S".into() },
            sort_key: Some(KeyAttribute { name: "sk".into(), attribute_type: "N".into() }),
        };
        let value = |w: Wire| AttributeValue { value: Some(w) };
        let item = BTreeMap::from([
            ("pk".to_string(), value(Wire::S("a".into()))),
            ("sk".to_string(), value(Wire::S("1".into()))),
        ]);
        assert_eq!(
            schema.storage_key(&item).unwrap_err().message,
            "One or more parameter values were invalid: Type mismatch for key sk expected: N actual: S"
        );
        let missing = BTreeMap::from([("pk".to_string(), value(Wire::S("a".into())))]);
        assert_eq!(
            schema.storage_key(&missing).unwrap_err().message,
            "One or more parameter values were invalid: Missing the key sk in the item"
        );
        let empty = BTreeMap::from([
            ("pk".to_string(), value(Wire::S("".into()))),
            ("sk".to_string(), value(Wire::N("1".into()))),
        ]);
        assert!(schema.storage_key(&empty).unwrap_err().message.contains("cannot contain an empty string value"));
        let good = BTreeMap::from([
            ("pk".to_string(), value(Wire::S("a".into()))),
            ("sk".to_string(), value(Wire::N("1".into()))),
        ]);
        assert!(schema.storage_key(&good).unwrap().starts_with(&7u64.to_be_bytes()));
    }
}
