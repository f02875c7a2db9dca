//! KeyConditionExpression: the partition key's equality and at most one sort key condition,
//! turned into one range of storage keys.
//!
//! Grammar (DynamoDB's): `pk = :v [AND sk op :w | AND sk BETWEEN :a AND :b | AND begins_with(sk, :p)]`,
//! op one of `= < <= > >=`, names bare or `#placeholders`, either condition first, parentheses allowed.

use std::collections::{BTreeMap, BTreeSet};

use tern_proto::v1::attribute_value::Value as Wire;
use tern_proto::v1::AttributeValue;
use tern_proto::{ApiError, Number};

use crate::storage::keys;
use crate::storage::reads::{key_after, prefix_end, KeyRange};
use crate::storage::schema::{check_key_value, TableSchema, MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES};

/// A comparison of the sort key with a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

/// The condition on the sort key.
#[derive(Debug, Clone, PartialEq)]
pub enum SortCondition {
    Compare(Comparator, AttributeValue),
    Between(AttributeValue, AttributeValue),
    BeginsWith(AttributeValue),
}

/// A parsed key condition.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyCondition {
    pub partition_value: AttributeValue,
    pub sort: Option<SortCondition>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Name(String),
    Value(String),
    Word(String),
    Cmp(Comparator),
    Open,
    Close,
    Comma,
}

fn syntax_error(token: &str, near: &str) -> ApiError {
    ApiError::validation(format!("Invalid KeyConditionExpression: Syntax error; token: \"{token}\", near: \"{near}\""))
}

fn tokenize(expression: &str) -> Result<Vec<Token>, ApiError> {
    let chars: Vec<char> = expression.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let word_char = |c: char| c.is_alphanumeric() || c == '_';
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        i += 1;
        let token = match c {
            c if c.is_whitespace() => continue,
            '(' => Token::Open,
            ')' => Token::Close,
            ',' => Token::Comma,
            '=' => Token::Cmp(Comparator::Eq),
            '<' if chars.get(i) == Some(&'=') => {
                i += 1;
                Token::Cmp(Comparator::Le)
            }
            '<' => Token::Cmp(Comparator::Lt),
            '>' if chars.get(i) == Some(&'=') => {
                i += 1;
                Token::Cmp(Comparator::Ge)
            }
            '>' => Token::Cmp(Comparator::Gt),
            '#' | ':' => {
                while i < chars.len() && word_char(chars[i]) {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                if text.len() == 1 {
                    return Err(syntax_error(&text, expression));
                }
                if c == '#' {
                    Token::Name(text)
                } else {
                    Token::Value(text)
                }
            }
            c if word_char(c) => {
                while i < chars.len() && word_char(chars[i]) {
                    i += 1;
                }
                Token::Word(chars[start..i].iter().collect())
            }
            other => return Err(syntax_error(&other.to_string(), expression)),
        };
        tokens.push(token);
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    expression: &'a str,
    names: &'a BTreeMap<String, String>,
    values: &'a BTreeMap<String, AttributeValue>,
    used_names: BTreeSet<String>,
    used_values: BTreeSet<String>,
}

/// One `attribute op value` term before it is matched to the key schema.
enum Term {
    Compare(String, Comparator, AttributeValue),
    Between(String, AttributeValue, AttributeValue),
    BeginsWith(String, AttributeValue),
}

impl Term {
    fn attribute(&self) -> &str {
        match self {
            Term::Compare(a, ..) | Term::Between(a, ..) | Term::BeginsWith(a, ..) => a,
        }
    }
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Result<Token, ApiError> {
        let token = self.tokens.get(self.at).cloned().ok_or_else(|| syntax_error("<EOF>", self.expression))?;
        self.at += 1;
        Ok(token)
    }

    fn expect(&mut self, expected: Token) -> Result<(), ApiError> {
        let token = self.next()?;
        if token != expected {
            return Err(syntax_error(&describe(&token), self.expression));
        }
        Ok(())
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn attribute(&mut self) -> Result<String, ApiError> {
        match self.next()? {
            Token::Name(placeholder) => {
                let name = self.names.get(&placeholder).cloned().ok_or_else(|| {
                    ApiError::validation(format!(
                        "Invalid KeyConditionExpression: An expression attribute name used in the document path is not defined; attribute name: {placeholder}"
                    ))
                })?;
                self.used_names.insert(placeholder);
                Ok(name)
            }
            Token::Word(word) => Ok(word),
            other => Err(syntax_error(&describe(&other), self.expression)),
        }
    }

    fn value(&mut self) -> Result<AttributeValue, ApiError> {
        match self.next()? {
            Token::Value(placeholder) => {
                let value = self.values.get(&placeholder).cloned().ok_or_else(|| {
                    ApiError::validation(format!(
                        "Invalid KeyConditionExpression: An expression attribute value used in expression is not defined; attribute value: {placeholder}"
                    ))
                })?;
                self.used_values.insert(placeholder);
                Ok(value)
            }
            other => Err(syntax_error(&describe(&other), self.expression)),
        }
    }

    /// `term (AND term)?`, each term optionally in parentheses, the whole optionally too.
    fn condition(&mut self) -> Result<Vec<Term>, ApiError> {
        let mut terms = vec![self.term()?];
        while self.is_word("AND") {
            self.at += 1;
            terms.push(self.term()?);
        }
        Ok(terms)
    }

    fn term(&mut self) -> Result<Term, ApiError> {
        if self.peek() == Some(&Token::Open) {
            self.at += 1;
            let mut inner = self.condition()?;
            self.expect(Token::Close)?;
            if inner.len() != 1 {
                return Err(ApiError::validation("Invalid KeyConditionExpression: Query key condition not supported"));
            }
            return Ok(inner.remove(0));
        }
        if self.is_word("begins_with") {
            self.at += 1;
            self.expect(Token::Open)?;
            let attribute = self.attribute()?;
            self.expect(Token::Comma)?;
            let prefix = self.value()?;
            self.expect(Token::Close)?;
            return Ok(Term::BeginsWith(attribute, prefix));
        }
        let attribute = self.attribute()?;
        if self.is_word("BETWEEN") {
            self.at += 1;
            let low = self.value()?;
            if !self.is_word("AND") {
                return Err(syntax_error(&self.peek().map(describe).unwrap_or("<EOF>".into()), self.expression));
            }
            self.at += 1;
            let high = self.value()?;
            return Ok(Term::Between(attribute, low, high));
        }
        match self.next()? {
            Token::Cmp(comparator) => Ok(Term::Compare(attribute, comparator, self.value()?)),
            other => Err(syntax_error(&describe(&other), self.expression)),
        }
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::Name(s) | Token::Value(s) | Token::Word(s) => s.clone(),
        Token::Cmp(c) => match c {
            Comparator::Eq => "=",
            Comparator::Lt => "<",
            Comparator::Le => "<=",
            Comparator::Gt => ">",
            Comparator::Ge => ">=",
        }
        .into(),
        Token::Open => "(".into(),
        Token::Close => ")".into(),
        Token::Comma => ",".into(),
    }
}

/// Parses and checks a key condition against the table's schema, with DynamoDB's errors, including
/// for placeholders that are defined but unused.
pub fn parse(
    expression: &str,
    names: &BTreeMap<String, String>,
    values: &BTreeMap<String, AttributeValue>,
    schema: &TableSchema,
) -> Result<KeyCondition, ApiError> {
    if expression.trim().is_empty() {
        return Err(ApiError::validation(
            "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
        ));
    }
    let mut parser = Parser {
        tokens: tokenize(expression)?,
        at: 0,
        expression,
        names,
        values,
        used_names: BTreeSet::new(),
        used_values: BTreeSet::new(),
    };
    let terms = parser.condition()?;
    if let Some(extra) = parser.peek() {
        return Err(syntax_error(&describe(extra), expression));
    }
    let unused_names: Vec<_> = names.keys().filter(|k| !parser.used_names.contains(*k)).cloned().collect();
    if !unused_names.is_empty() {
        return Err(ApiError::validation(format!(
            "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}",
            unused_names.join(", ")
        )));
    }
    let unused_values: Vec<_> = values.keys().filter(|k| !parser.used_values.contains(*k)).cloned().collect();
    if !unused_values.is_empty() {
        return Err(ApiError::validation(format!(
            "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}",
            unused_values.join(", ")
        )));
    }
    let unsupported = || ApiError::validation("Query key condition not supported");
    let pk = &schema.partition_key;
    let mut partition_value = None;
    let mut sort = None;
    for term in terms {
        if term.attribute() == pk.name {
            match term {
                Term::Compare(_, Comparator::Eq, value) if partition_value.is_none() => partition_value = Some(value),
                _ => return Err(unsupported()),
            }
            continue;
        }
        let Some(sk) = schema.sort_key.as_ref().filter(|sk| sk.name == term.attribute()) else {
            return Err(ApiError::validation(format!(
                "Query condition missed key schema element: {}",
                schema.sort_key.as_ref().map_or(pk.name.as_str(), |sk| {
                    if partition_value.is_none() {
                        pk.name.as_str()
                    } else {
                        sk.name.as_str()
                    }
                })
            )));
        };
        if sort.is_some() {
            return Err(unsupported());
        }
        let typed = |value: &AttributeValue| -> Result<(), ApiError> {
            check_key_value(sk, value, MAX_SORT_KEY_BYTES).map_err(|_| {
                ApiError::validation(
                    "One or more parameter values were invalid: Condition parameter type does not match schema type",
                )
            })
        };
        sort = Some(match term {
            Term::Compare(_, comparator, value) => {
                typed(&value)?;
                SortCondition::Compare(comparator, value)
            }
            Term::Between(_, low, high) => {
                typed(&low)?;
                typed(&high)?;
                if compare_key_values(&low, &high) == std::cmp::Ordering::Greater {
                    return Err(ApiError::validation(format!(
                        "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {{{}}}, upper bound operand: AttributeValue: {{{}}}",
                        show(&low), show(&high)
                    )));
                }
                SortCondition::Between(low, high)
            }
            Term::BeginsWith(_, prefix) => {
                if sk.attribute_type == "N" {
                    return Err(ApiError::validation("Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"));
                }
                typed(&prefix).or_else(|e| if is_empty_key_value(&prefix) { Ok(()) } else { Err(e) })?;
                SortCondition::BeginsWith(prefix)
            }
        });
    }
    let partition_value = partition_value
        .ok_or_else(|| ApiError::validation(format!("Query condition missed key schema element: {}", pk.name)))?;
    check_key_value(pk, &partition_value, MAX_PARTITION_KEY_BYTES).map_err(|e| {
        if e.message.contains("Type mismatch") {
            ApiError::validation(
                "One or more parameter values were invalid: Condition parameter type does not match schema type",
            )
        } else {
            e
        }
    })?;
    Ok(KeyCondition { partition_value, sort })
}

fn is_empty_key_value(value: &AttributeValue) -> bool {
    matches!(&value.value, Some(Wire::S(s)) if s.is_empty()) || matches!(&value.value, Some(Wire::B(b)) if b.is_empty())
}

fn show(value: &AttributeValue) -> String {
    match &value.value {
        Some(Wire::S(s)) => format!("S:{s}"),
        Some(Wire::N(n)) => format!("N:{n}"),
        Some(Wire::B(b)) => format!("B:{b:?}"),
        _ => "?".into(),
    }
}

fn compare_key_values(a: &AttributeValue, b: &AttributeValue) -> std::cmp::Ordering {
    match (&a.value, &b.value) {
        (Some(Wire::N(x)), Some(Wire::N(y))) => match (x.parse::<Number>(), y.parse::<Number>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => std::cmp::Ordering::Equal,
        },
        (Some(Wire::S(x)), Some(Wire::S(y))) => x.as_bytes().cmp(y.as_bytes()),
        (Some(Wire::B(x)), Some(Wire::B(y))) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    }
}

impl KeyCondition {
    /// The prefix of every storage key in the queried partition.
    pub fn partition_prefix(&self, schema: &TableSchema) -> Result<Vec<u8>, ApiError> {
        let mut prefix = keys::table_prefix(schema.table_id);
        keys::encode_key_value(&mut prefix, &self.partition_value)?;
        Ok(prefix)
    }

    /// The storage keys the condition selects, as one range.
    pub fn range(&self, schema: &TableSchema) -> Result<KeyRange, ApiError> {
        let prefix = self.partition_prefix(schema)?;
        let at = |value: &AttributeValue| -> Result<Vec<u8>, ApiError> {
            let mut key = prefix.clone();
            keys::encode_key_value(&mut key, value)?;
            Ok(key)
        };
        let everything = KeyRange { lower: prefix.clone(), upper: prefix_end(&prefix) };
        Ok(match &self.sort {
            None => everything,
            Some(SortCondition::Compare(comparator, value)) => {
                let key = at(value)?;
                match comparator {
                    Comparator::Eq => KeyRange { upper: key_after(&key), lower: key },
                    Comparator::Lt => KeyRange { upper: key, ..everything },
                    Comparator::Le => KeyRange { upper: key_after(&key), ..everything },
                    Comparator::Gt => KeyRange { lower: key_after(&key), ..everything },
                    Comparator::Ge => KeyRange { lower: key, ..everything },
                }
            }
            Some(SortCondition::Between(low, high)) => KeyRange { lower: at(low)?, upper: key_after(&at(high)?) },
            Some(SortCondition::BeginsWith(value)) => {
                let mut start = prefix.clone();
                match &value.value {
                    Some(Wire::S(s)) => keys::encode_bytes(&mut start, s.as_bytes(), false),
                    Some(Wire::B(b)) => keys::encode_bytes(&mut start, b, false),
                    _ => return Err(ApiError::validation("begins_with needs a string or binary operand")),
                }
                KeyRange { upper: prefix_end(&start), lower: start }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::schema::KeyAttribute;

    fn schema() -> TableSchema {
        TableSchema {
            table_id: 1,
            partition_key: KeyAttribute { name: "pk".into(), attribute_type: "S".into() },
            sort_key: Some(KeyAttribute { name: "sk".into(), attribute_type: "N".into() }),
        }
    }

    fn s(v: &str) -> AttributeValue {
        AttributeValue { value: Some(Wire::S(v.into())) }
    }

    fn n(v: &str) -> AttributeValue {
        AttributeValue { value: Some(Wire::N(v.into())) }
    }

    fn parse_with(
        expression: &str,
        names: &[(&str, &str)],
        values: &[(&str, AttributeValue)],
    ) -> Result<KeyCondition, ApiError> {
        let names = names.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let values = values.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        parse(expression, &names, &values, &schema())
    }

    #[test]
    fn parses_every_sort_key_form() {
        let cases = [
            ("pk = :p AND sk < :a", SortCondition::Compare(Comparator::Lt, n("1"))),
            ("pk = :p and sk >= :a", SortCondition::Compare(Comparator::Ge, n("1"))),
            ("(sk <= :a) AND (pk = :p)", SortCondition::Compare(Comparator::Le, n("1"))),
            ("pk = :p AND sk BETWEEN :a AND :b", SortCondition::Between(n("1"), n("2"))),
        ];
        for (expression, expected) in cases {
            let values: Vec<(&str, AttributeValue)> = if expression.contains(":b") {
                vec![(":p", s("x")), (":a", n("1")), (":b", n("2"))]
            } else {
                vec![(":p", s("x")), (":a", n("1"))]
            };
            let parsed = parse_with(expression, &[], &values).unwrap();
            assert_eq!(parsed, KeyCondition { partition_value: s("x"), sort: Some(expected) }, "{expression}");
        }
        let by_name = parse_with("#k = :p", &[("#k", "pk")], &[(":p", s("x"))]).unwrap();
        assert_eq!(by_name, KeyCondition { partition_value: s("x"), sort: None });
    }

    #[test]
    fn rejects_what_dynamodb_rejects() {
        let error = |e: &str, v: &[(&str, AttributeValue)]| parse_with(e, &[], v).unwrap_err().message;
        assert_eq!(error("sk = :a", &[(":a", n("1"))]), "Query condition missed key schema element: pk");
        assert_eq!(
            error("pk = :p", &[(":p", n("1"))]),
            "One or more parameter values were invalid: Condition parameter type does not match schema type"
        );
        assert_eq!(
            error("pk = :p", &[(":p", s("x")), (":q", s("y"))]),
            "Value provided in ExpressionAttributeValues unused in expressions: keys: {:q}"
        );
        assert_eq!(error("pk = :p", &[]), "Invalid KeyConditionExpression: An expression attribute value used in expression is not defined; attribute value: :p");
        assert_eq!(error("pk < :p", &[(":p", s("x"))]), "Query key condition not supported");
        assert_eq!(
            error("pk = :p AND begins_with(sk, :a)", &[(":p", s("x")), (":a", n("1"))]),
            "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"
        );
        assert!(error("pk = :p AND sk BETWEEN :b AND :a", &[(":p", s("x")), (":a", n("1")), (":b", n("2"))])
            .contains("BETWEEN operator requires upper bound"));
        assert!(error("pk = = :p", &[(":p", s("x"))]).starts_with("Invalid KeyConditionExpression: Syntax error"));
    }
}
