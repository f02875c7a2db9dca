//! The checks DynamoDB makes before evaluating anything: placeholders defined and used, no reserved
//! word as a bare name, operand types that can work, limits on IN and BETWEEN.

use std::collections::{BTreeMap, BTreeSet};

use tern_proto::value::AttributeValue;
use tern_proto::ApiError;

use super::ast::{Comparator, Condition, Function, Name, Operand, Path, Projection, Step, Update};
use super::condition::order;
use super::parse::{parse_condition, parse_projection, parse_update, ExpressionKind};

/// Most operands of one IN.
pub const MAX_IN_OPERANDS: usize = 100;

const VALID_TYPES: [&str; 10] = ["B", "NULL", "SS", "BOOL", "L", "BS", "N", "NS", "S", "M"];

/// Whether a name is one of DynamoDB's reserved words (case-insensitive).
pub fn is_reserved(name: &str) -> bool {
    static WORDS: std::sync::OnceLock<BTreeSet<&'static str>> = std::sync::OnceLock::new();
    let words = WORDS
        .get_or_init(|| include_str!("reserved_words.txt").lines().map(str::trim).filter(|w| !w.is_empty()).collect());
    words.contains(name.to_ascii_uppercase().as_str())
}

/// The expressions of one request, parsed and checked together, so that unused placeholders are found.
pub struct ExpressionSet<'a> {
    names: &'a BTreeMap<String, String>,
    values: &'a BTreeMap<String, AttributeValue>,
    used_names: BTreeSet<String>,
    used_values: BTreeSet<String>,
    kind: ExpressionKind,
}

impl<'a> ExpressionSet<'a> {
    pub fn new(names: &'a BTreeMap<String, String>, values: &'a BTreeMap<String, AttributeValue>) -> Self {
        ExpressionSet {
            names,
            values,
            used_names: BTreeSet::new(),
            used_values: BTreeSet::new(),
            kind: ExpressionKind::Condition,
        }
    }

    /// Parses and checks a condition-like expression (condition, filter, key condition).
    pub fn condition(&mut self, kind: ExpressionKind, text: &str) -> Result<Condition, ApiError> {
        self.kind = kind;
        let condition = parse_condition(kind, text)?;
        self.check_condition(&condition)?;
        Ok(condition)
    }

    /// Parses and checks an UpdateExpression.
    pub fn update(&mut self, text: &str) -> Result<Update, ApiError> {
        self.kind = ExpressionKind::Update;
        let update = parse_update(text)?;
        for (path, value) in &update.set {
            self.path(path)?;
            self.update_operand(value)?;
        }
        for path in &update.remove {
            self.path(path)?;
        }
        for (path, value) in &update.add {
            self.path(path)?;
            let value = self.operand(value)?;
            if let Some(v) = value.filter(|v| {
                !matches!(
                    v,
                    AttributeValue::N(_) | AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_)
                )
            }) {
                return Err(self.wrong_set_operand("ADD", v));
            }
        }
        for (path, value) in &update.delete {
            self.path(path)?;
            let value = self.operand(value)?;
            if let Some(v) =
                value.filter(|v| !matches!(v, AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_)))
            {
                return Err(self.wrong_set_operand("DELETE", v));
            }
        }
        Ok(update)
    }

    /// Parses and checks a ProjectionExpression.
    pub fn projection(&mut self, text: &str) -> Result<Projection, ApiError> {
        self.kind = ExpressionKind::Projection;
        let projection = parse_projection(text)?;
        for path in &projection.0 {
            self.path(path)?;
        }
        Ok(projection)
    }

    /// Fails when a placeholder was given but no expression used it.
    pub fn finish(self) -> Result<(), ApiError> {
        let unused: Vec<&str> =
            self.names.keys().filter(|k| !self.used_names.contains(*k)).map(String::as_str).collect();
        if !unused.is_empty() {
            return Err(ApiError::validation(format!(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}",
                unused.join(", ")
            )));
        }
        let unused: Vec<&str> =
            self.values.keys().filter(|k| !self.used_values.contains(*k)).map(String::as_str).collect();
        if !unused.is_empty() {
            return Err(ApiError::validation(format!(
                "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}",
                unused.join(", ")
            )));
        }
        Ok(())
    }

    fn wrong_type(&self, operator: &str, value: &AttributeValue) -> ApiError {
        self.kind.invalid(format!(
            "Incorrect operand type for operator or function; operator or function: {operator}, operand type: {}",
            value.type_name()
        ))
    }

    /// ADD and DELETE name their operand types in full, with the set of types they take.
    fn wrong_set_operand(&self, action: &str, value: &AttributeValue) -> ApiError {
        let long = match value {
            AttributeValue::S(_) => "STRING",
            AttributeValue::N(_) => "NUMBER",
            AttributeValue::B(_) => "BINARY",
            AttributeValue::Bool(_) => "BOOLEAN",
            AttributeValue::Null => "NULL",
            AttributeValue::L(_) => "LIST",
            AttributeValue::M(_) => "MAP",
            AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_) => "SET",
        };
        self.kind.invalid(format!(
            "Incorrect operand type for operator or function; operator: {action}, operand type: {long}, typeSet: ALLOWED_FOR_{action}_OPERAND"
        ))
    }

    fn path(&mut self, path: &Path) -> Result<(), ApiError> {
        for step in &path.0 {
            match step {
                Step::Name(Name::Bare(name)) if is_reserved(name) => {
                    return Err(self
                        .kind
                        .invalid(format!("Attribute name is a reserved keyword; reserved keyword: {name}")));
                }
                Step::Name(Name::Placeholder(p)) => {
                    if !self.names.contains_key(p) {
                        return Err(self.kind.invalid(format!(
                            "An expression attribute name used in the document path is not defined; attribute name: {p}"
                        )));
                    }
                    self.used_names.insert(p.clone());
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks an operand; returns the placeholder's value when it is one.
    fn operand(&mut self, operand: &Operand) -> Result<Option<&'a AttributeValue>, ApiError> {
        match operand {
            Operand::Path(p) | Operand::Size(p) => self.path(p).map(|_| None),
            Operand::Value(v) => {
                let value = self.values.get(v).ok_or_else(|| {
                    self.kind.invalid(format!(
                        "An expression attribute value used in expression is not defined; attribute value: {v}"
                    ))
                })?;
                self.used_values.insert(v.clone());
                Ok(Some(value))
            }
            Operand::IfNotExists(..) | Operand::ListAppend(..) | Operand::Plus(..) | Operand::Minus(..) => Err(self
                .kind
                .invalid(format!("The function is not allowed in a {}; operand: {operand}", self.kind.parameter()))),
        }
    }

    fn update_operand(&mut self, operand: &Operand) -> Result<(), ApiError> {
        match operand {
            Operand::IfNotExists(path, fallback) => {
                self.path(path)?;
                self.update_operand(fallback)
            }
            Operand::ListAppend(a, b) => {
                self.update_operand(a)?;
                self.update_operand(b)
            }
            Operand::Plus(a, b) | Operand::Minus(a, b) => {
                let symbol = if matches!(operand, Operand::Plus(..)) { "+" } else { "-" };
                for side in [a, b] {
                    self.update_operand(side)?;
                    if let Operand::Value(v) = side.as_ref() {
                        let value = &self.values[v];
                        if !matches!(value, AttributeValue::N(_)) {
                            return Err(self.wrong_type(symbol, value));
                        }
                    }
                }
                Ok(())
            }
            Operand::Size(_) => {
                Err(self.kind.invalid("The function is not allowed in an update expression; function: size"))
            }
            Operand::Path(_) | Operand::Value(_) => self.operand(operand).map(|_| ()),
        }
    }

    fn check_condition(&mut self, condition: &Condition) -> Result<(), ApiError> {
        match condition {
            Condition::Compare(a, comparator, b) => {
                let values = [self.operand(a)?, self.operand(b)?];
                if !matches!(comparator, Comparator::Eq | Comparator::Ne) {
                    if let Some(v) = values
                        .into_iter()
                        .flatten()
                        .find(|v| !matches!(v, AttributeValue::N(_) | AttributeValue::S(_) | AttributeValue::B(_)))
                    {
                        return Err(self.wrong_type(&comparator.to_string(), v));
                    }
                }
            }
            Condition::Between(x, low, high) => {
                self.operand(x)?;
                let (low, high) = (self.operand(low)?, self.operand(high)?);
                for v in [low, high].into_iter().flatten() {
                    if !matches!(v, AttributeValue::N(_) | AttributeValue::S(_) | AttributeValue::B(_)) {
                        return Err(self.wrong_type("BETWEEN", v));
                    }
                }
                if let (Some(low), Some(high)) = (low, high) {
                    if order(low, high) == Some(std::cmp::Ordering::Greater) {
                        return Err(self.kind.invalid(format!(
                            "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {{{}:{}}}, upper bound operand: AttributeValue: {{{}:{}}}",
                            low.type_name(), scalar_text(low), high.type_name(), scalar_text(high)
                        )));
                    }
                }
            }
            Condition::In(x, list) => {
                if list.len() > MAX_IN_OPERANDS {
                    return Err(self.kind.invalid(format!(
                        "The IN operator is provided with too many operands; number of operands: {}",
                        list.len()
                    )));
                }
                self.operand(x)?;
                for operand in list {
                    self.operand(operand)?;
                }
            }
            Condition::Function(function) => match function {
                Function::AttributeExists(p) | Function::AttributeNotExists(p) => self.path(p)?,
                Function::AttributeType(p, t) => {
                    self.path(p)?;
                    match self.operand(t)? {
                        Some(AttributeValue::S(name)) if VALID_TYPES.contains(&name.as_str()) => {}
                        Some(AttributeValue::S(name)) => {
                            return Err(self.kind.invalid(format!(
                                "Invalid attribute type name found; type: {name}, valid types: {{ B,NULL,SS,BOOL,L,BS,N,NS,S,M }}"
                            )))
                        }
                        Some(other) => return Err(self.wrong_type("attribute_type", other)),
                        None => {}
                    }
                }
                Function::BeginsWith(p, v) => {
                    self.path(p)?;
                    if let Some(v) =
                        self.operand(v)?.filter(|v| !matches!(v, AttributeValue::S(_) | AttributeValue::B(_)))
                    {
                        return Err(self.wrong_type("begins_with", v));
                    }
                }
                Function::Contains(p, v) => {
                    self.path(p)?;
                    self.operand(v)?;
                }
            },
            Condition::Not(c) | Condition::Parenthesized(c) => self.check_condition(c)?,
            Condition::And(a, b) | Condition::Or(a, b) => {
                self.check_condition(a)?;
                self.check_condition(b)?;
            }
        }
        Ok(())
    }
}

fn scalar_text(value: &AttributeValue) -> String {
    match value {
        AttributeValue::N(n) => n.to_string(),
        AttributeValue::S(s) => s.clone(),
        AttributeValue::B(b) => format!("{b:?}"),
        other => other.type_name().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_words_are_known() {
        assert!(is_reserved("name"));
        assert!(is_reserved("STATUS"));
        assert!(!is_reserved("price"));
    }
}
