//! The syntax trees of DynamoDB's expressions, before placeholders are substituted.

use std::fmt;

/// An attribute name as written: bare (`price`) or a `#placeholder`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Name {
    Bare(String),
    Placeholder(String),
}

/// One step of a document path: an attribute (or map key) name, or a list index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    Name(Name),
    Index(u32),
}

/// A document path such as `a.b[2].#c`; it always starts with a name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Path(pub Vec<Step>);

/// A value in an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    Path(Path),
    /// A `:placeholder` from ExpressionAttributeValues.
    Value(String),
    /// `size(path)`.
    Size(Path),
    /// `if_not_exists(path, value)` (updates only).
    IfNotExists(Path, Box<Operand>),
    /// `list_append(a, b)` (updates only).
    ListAppend(Box<Operand>, Box<Operand>),
    /// `a + b` (updates only).
    Plus(Box<Operand>, Box<Operand>),
    /// `a - b` (updates only).
    Minus(Box<Operand>, Box<Operand>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// The boolean functions of conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Function {
    AttributeExists(Path),
    AttributeNotExists(Path),
    AttributeType(Path, Operand),
    BeginsWith(Path, Operand),
    Contains(Path, Operand),
}

/// A condition (ConditionExpression, FilterExpression, KeyConditionExpression).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Compare(Operand, Comparator, Operand),
    Between(Operand, Operand, Operand),
    In(Operand, Vec<Operand>),
    Function(Function),
    Not(Box<Condition>),
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    Parenthesized(Box<Condition>),
}

/// An UpdateExpression: its four clauses' actions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    pub set: Vec<(Path, Operand)>,
    pub remove: Vec<Path>,
    pub add: Vec<(Path, Operand)>,
    pub delete: Vec<(Path, Operand)>,
}

/// A ProjectionExpression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projection(pub Vec<Path>);

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Name::Bare(n) | Name::Placeholder(n) => f.write_str(n),
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Name(name) if i == 0 => write!(f, "{name}")?,
                Step::Name(name) => write!(f, ".{name}")?,
                Step::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Path(p) => write!(f, "{p}"),
            Operand::Value(v) => f.write_str(v),
            Operand::Size(p) => write!(f, "size({p})"),
            Operand::IfNotExists(p, v) => write!(f, "if_not_exists({p}, {v})"),
            Operand::ListAppend(a, b) => write!(f, "list_append({a}, {b})"),
            Operand::Plus(a, b) => write!(f, "{a} + {b}"),
            Operand::Minus(a, b) => write!(f, "{a} - {b}"),
        }
    }
}

impl fmt::Display for Comparator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Comparator::Eq => "=",
            Comparator::Ne => "<>",
            Comparator::Lt => "<",
            Comparator::Le => "<=",
            Comparator::Gt => ">",
            Comparator::Ge => ">=",
        })
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Function::AttributeExists(p) => write!(f, "attribute_exists({p})"),
            Function::AttributeNotExists(p) => write!(f, "attribute_not_exists({p})"),
            Function::AttributeType(p, t) => write!(f, "attribute_type({p}, {t})"),
            Function::BeginsWith(p, v) => write!(f, "begins_with({p}, {v})"),
            Function::Contains(p, v) => write!(f, "contains({p}, {v})"),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Compare(a, c, b) => write!(f, "{a} {c} {b}"),
            Condition::Between(a, low, high) => write!(f, "{a} BETWEEN {low} AND {high}"),
            Condition::In(a, list) => {
                write!(f, "{a} IN (")?;
                for (i, v) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str(")")
            }
            Condition::Function(function) => write!(f, "{function}"),
            Condition::Not(c) => write!(f, "NOT {c}"),
            Condition::And(a, b) => write!(f, "{a} AND {b}"),
            Condition::Or(a, b) => write!(f, "{a} OR {b}"),
            Condition::Parenthesized(c) => write!(f, "({c})"),
        }
    }
}

impl fmt::Display for Update {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut clauses = Vec::new();
        let join = |items: Vec<String>| items.join(", ");
        if !self.set.is_empty() {
            clauses.push(format!("SET {}", join(self.set.iter().map(|(p, v)| format!("{p} = {v}")).collect())));
        }
        if !self.remove.is_empty() {
            clauses.push(format!("REMOVE {}", join(self.remove.iter().map(|p| p.to_string()).collect())));
        }
        if !self.add.is_empty() {
            clauses.push(format!("ADD {}", join(self.add.iter().map(|(p, v)| format!("{p} {v}")).collect())));
        }
        if !self.delete.is_empty() {
            clauses.push(format!("DELETE {}", join(self.delete.iter().map(|(p, v)| format!("{p} {v}")).collect())));
        }
        f.write_str(&clauses.join(" "))
    }
}

impl fmt::Display for Projection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", "))
    }
}
