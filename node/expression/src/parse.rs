//! Parsers for DynamoDB's expression language, written with winnow. Keywords are case-insensitive,
//! function names are not (as in DynamoDB); a syntax error names the token where parsing stopped.

use tern_proto::ApiError;
use winnow::ascii::{dec_uint, multispace0, Caseless};
use winnow::combinator::{alt, cut_err, delimited, eof, not, opt, preceded, repeat, separated, terminated};
use winnow::error::{ContextError, ErrMode};
use winnow::prelude::*;
use winnow::token::{one_of, take_while};

use super::ast::*;

/// Which request parameter an expression came from; DynamoDB names it in its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpressionKind {
    Condition,
    Update,
    Filter,
    Projection,
    KeyCondition,
}

impl ExpressionKind {
    pub fn parameter(self) -> &'static str {
        match self {
            ExpressionKind::Condition => "ConditionExpression",
            ExpressionKind::Update => "UpdateExpression",
            ExpressionKind::Filter => "FilterExpression",
            ExpressionKind::Projection => "ProjectionExpression",
            ExpressionKind::KeyCondition => "KeyConditionExpression",
        }
    }

    /// A ValidationException about this expression.
    pub fn invalid(self, why: impl std::fmt::Display) -> ApiError {
        ApiError::validation(format!("Invalid {}: {why}", self.parameter()))
    }
}

type PResult<T> = ModalResult<T, ContextError>;

fn word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn ws(input: &mut &str) -> PResult<()> {
    multispace0.void().parse_next(input)
}

/// A case-insensitive keyword that is a whole word.
fn keyword<'a>(word: &'static str) -> impl Parser<&'a str, (), ErrMode<ContextError>> {
    move |input: &mut &'a str| (ws, Caseless(word), not(one_of(word_char))).void().parse_next(input)
}

fn symbol<'a>(text: &'static str) -> impl Parser<&'a str, (), ErrMode<ContextError>> {
    move |input: &mut &'a str| (ws, text).void().parse_next(input)
}

fn identifier(input: &mut &str) -> PResult<String> {
    (one_of(|c: char| c.is_ascii_alphabetic() || c == '_'), take_while(0.., word_char))
        .take()
        .map(String::from)
        .parse_next(input)
}

fn name_placeholder(input: &mut &str) -> PResult<String> {
    ('#', take_while(1.., word_char)).take().map(String::from).parse_next(input)
}

fn value_placeholder(input: &mut &str) -> PResult<String> {
    (ws, (':', take_while(1.., word_char)).take()).map(|(_, v): ((), &str)| v.to_string()).parse_next(input)
}

fn name(input: &mut &str) -> PResult<Name> {
    alt((name_placeholder.map(Name::Placeholder), identifier.map(Name::Bare))).parse_next(input)
}

/// `a.b[2].#c`
pub fn path(input: &mut &str) -> PResult<Path> {
    ws.parse_next(input)?;
    let first = name.parse_next(input)?;
    let rest: Vec<Step> = repeat(
        0..,
        alt((
            preceded('.', cut_err(name)).map(Step::Name),
            delimited('[', cut_err(dec_uint), cut_err(']')).map(Step::Index),
        )),
    )
    .parse_next(input)?;
    Ok(Path(std::iter::once(Step::Name(first)).chain(rest).collect()))
}

fn function_call<'a, T>(
    function: &'static str,
    arguments: impl Parser<&'a str, T, ErrMode<ContextError>>,
) -> impl Parser<&'a str, T, ErrMode<ContextError>> {
    delimited((ws, function, ws, '('), arguments, symbol(")"))
}

/// An operand of a condition: `size(path)`, `:value` or a path.
fn condition_operand(input: &mut &str) -> PResult<Operand> {
    alt((
        function_call("size", path).map(Operand::Size),
        value_placeholder.map(Operand::Value),
        path.map(Operand::Path),
    ))
    .parse_next(input)
}

fn comparator(input: &mut &str) -> PResult<Comparator> {
    preceded(
        ws,
        alt((
            "<>".value(Comparator::Ne),
            "<=".value(Comparator::Le),
            ">=".value(Comparator::Ge),
            "<".value(Comparator::Lt),
            ">".value(Comparator::Gt),
            "=".value(Comparator::Eq),
        )),
    )
    .parse_next(input)
}

fn boolean_function(input: &mut &str) -> PResult<Function> {
    let path_and_operand = || (path, symbol(","), condition_operand).map(|(p, _, o)| (p, o));
    alt((
        function_call("attribute_exists", path).map(Function::AttributeExists),
        function_call("attribute_not_exists", path).map(Function::AttributeNotExists),
        function_call("attribute_type", path_and_operand()).map(|(p, o)| Function::AttributeType(p, o)),
        function_call("begins_with", path_and_operand()).map(|(p, o)| Function::BeginsWith(p, o)),
        function_call("contains", path_and_operand()).map(|(p, o)| Function::Contains(p, o)),
    ))
    .parse_next(input)
}

fn predicate(input: &mut &str) -> PResult<Condition> {
    if let Some(inner) = opt(delimited(symbol("("), condition, cut_err(symbol(")")))).parse_next(input)? {
        return Ok(Condition::Parenthesized(Box::new(inner)));
    }
    if let Some(function) = opt(boolean_function).parse_next(input)? {
        return Ok(Condition::Function(function));
    }
    let left = condition_operand.parse_next(input)?;
    if let Some((comparator, right)) = opt((comparator, cut_err(condition_operand))).parse_next(input)? {
        return Ok(Condition::Compare(left, comparator, right));
    }
    if opt(keyword("BETWEEN")).parse_next(input)?.is_some() {
        let (low, _, high) = cut_err((condition_operand, keyword("AND"), condition_operand)).parse_next(input)?;
        return Ok(Condition::Between(left, low, high));
    }
    if opt(keyword("IN")).parse_next(input)?.is_some() {
        let list = cut_err(delimited(symbol("("), separated(1.., condition_operand, symbol(",")), symbol(")")))
            .parse_next(input)?;
        return Ok(Condition::In(left, list));
    }
    Err(ErrMode::Backtrack(ContextError::new()))
}

fn negation(input: &mut &str) -> PResult<Condition> {
    alt((preceded(keyword("NOT"), cut_err(negation)).map(|c| Condition::Not(Box::new(c))), predicate)).parse_next(input)
}

fn conjunction(input: &mut &str) -> PResult<Condition> {
    let first = negation.parse_next(input)?;
    let rest: Vec<Condition> = repeat(0.., preceded(keyword("AND"), cut_err(negation))).parse_next(input)?;
    Ok(rest.into_iter().fold(first, |a, b| Condition::And(Box::new(a), Box::new(b))))
}

/// A whole condition, `OR` binding loosest.
pub fn condition(input: &mut &str) -> PResult<Condition> {
    let first = conjunction.parse_next(input)?;
    let rest: Vec<Condition> = repeat(0.., preceded(keyword("OR"), cut_err(conjunction))).parse_next(input)?;
    Ok(rest.into_iter().fold(first, |a, b| Condition::Or(Box::new(a), Box::new(b))))
}

/// An operand of a SET action's value.
fn set_operand(input: &mut &str) -> PResult<Operand> {
    alt((
        function_call("if_not_exists", (path, symbol(","), set_value))
            .map(|(p, _, v)| Operand::IfNotExists(p, Box::new(v))),
        function_call("list_append", (set_value, symbol(","), set_value))
            .map(|(a, _, b)| Operand::ListAppend(Box::new(a), Box::new(b))),
        value_placeholder.map(Operand::Value),
        path.map(Operand::Path),
    ))
    .parse_next(input)
}

fn set_value(input: &mut &str) -> PResult<Operand> {
    let left = set_operand.parse_next(input)?;
    let right = opt((preceded(ws, alt(('+', '-'))), cut_err(set_operand))).parse_next(input)?;
    Ok(match right {
        Some(('+', right)) => Operand::Plus(Box::new(left), Box::new(right)),
        Some((_, right)) => Operand::Minus(Box::new(left), Box::new(right)),
        None => left,
    })
}

/// One clause of an update expression, before clauses are merged.
enum Clause {
    Set(Vec<(Path, Operand)>),
    Remove(Vec<Path>),
    Add(Vec<(Path, Operand)>),
    Delete(Vec<(Path, Operand)>),
}

fn clause(input: &mut &str) -> PResult<Clause> {
    let path_value = || (path, value_placeholder.map(Operand::Value));
    alt((
        preceded(
            keyword("SET"),
            cut_err(separated(1.., (path, symbol("="), set_value).map(|(p, _, v)| (p, v)), symbol(","))),
        )
        .map(Clause::Set),
        preceded(keyword("REMOVE"), cut_err(separated(1.., path, symbol(",")))).map(Clause::Remove),
        preceded(keyword("ADD"), cut_err(separated(1.., path_value(), symbol(","))).map(Clause::Add)),
        preceded(keyword("DELETE"), cut_err(separated(1.., path_value(), symbol(","))).map(Clause::Delete)),
    ))
    .parse_next(input)
}

/// Splits an expression into tokens as DynamoDB reports them: whitespace runs, words and placeholders,
/// comparator runs, and single other characters. Returns byte ranges.
fn tokens(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let same = |d: char| -> bool {
            if c.is_whitespace() {
                d.is_whitespace()
            } else if word_char(c) || c == '#' || c == ':' {
                word_char(d)
            } else if "<>=".contains(c) {
                "<>=".contains(d)
            } else {
                false
            }
        };
        let mut end = start + c.len_utf8();
        while let Some(&(i, d)) = chars.peek() {
            if !same(d) {
                break;
            }
            end = i + d.len_utf8();
            chars.next();
        }
        out.push(start..end);
    }
    out
}

/// DynamoDB's syntax error: the token where parsing stopped (`<EOF>` at the end) and the text near it:
/// the previous token, the token, the next token, reaching one token further over whitespace.
fn syntax_error(kind: ExpressionKind, text: &str, offset: usize) -> ApiError {
    let tokens = tokens(text);
    let blank = |i: usize| text[tokens[i].clone()].trim().is_empty();
    let bad = tokens.iter().position(|t| t.end > offset && !text[t.clone()].trim().is_empty());
    let (token, first, last) = match bad {
        Some(i) => {
            let mut first = i.saturating_sub(1);
            if first < i && blank(first) && first > 0 {
                first -= 1;
            }
            let mut last = (i + 1).min(tokens.len() - 1);
            if last > i && blank(last) && last + 1 < tokens.len() {
                last += 1;
            }
            (&text[tokens[i].clone()], first, last)
        }
        None => {
            let mut first = tokens.len().saturating_sub(1);
            while first > 0 && blank(first) {
                first -= 1;
            }
            ("<EOF>", first, tokens.len().saturating_sub(1))
        }
    };
    let near = if tokens.is_empty() { "" } else { text[tokens[first].start..tokens[last].end].trim() };
    kind.invalid(format!("Syntax error; token: \"{token}\", near: \"{near}\""))
}

fn run<'a, T>(
    kind: ExpressionKind,
    text: &'a str,
    parser: impl Parser<&'a str, T, ErrMode<ContextError>>,
) -> Result<T, ApiError> {
    if text.trim().is_empty() {
        return Err(kind.invalid("The expression can not be empty;"));
    }
    terminated(parser, (ws, eof)).parse(text).map_err(|e| syntax_error(kind, text, e.offset()))
}

/// Parses a condition (ConditionExpression, FilterExpression or KeyConditionExpression).
pub fn parse_condition(kind: ExpressionKind, text: &str) -> Result<Condition, ApiError> {
    run(kind, text, condition)
}

/// Parses an UpdateExpression; each clause may appear once.
pub fn parse_update(text: &str) -> Result<Update, ApiError> {
    let clauses: Vec<Clause> = run(ExpressionKind::Update, text, repeat(1.., clause))?;
    let mut update = Update::default();
    let mut seen = Vec::new();
    for clause in clauses {
        let name = match &clause {
            Clause::Set(_) => "SET",
            Clause::Remove(_) => "REMOVE",
            Clause::Add(_) => "ADD",
            Clause::Delete(_) => "DELETE",
        };
        if seen.contains(&name) {
            return Err(ExpressionKind::Update
                .invalid(format!("The \"{name}\" section can only be used once in an update expression;")));
        }
        seen.push(name);
        match clause {
            Clause::Set(actions) => update.set = actions,
            Clause::Remove(paths) => update.remove = paths,
            Clause::Add(actions) => update.add = actions,
            Clause::Delete(actions) => update.delete = actions,
        }
    }
    Ok(update)
}

/// Parses a ProjectionExpression.
pub fn parse_projection(text: &str) -> Result<Projection, ApiError> {
    run(ExpressionKind::Projection, text, separated(1.., path, symbol(","))).map(Projection)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bare(n: &str) -> Step {
        Step::Name(Name::Bare(n.into()))
    }

    #[test]
    fn paths_with_maps_and_lists() {
        let projection = parse_projection("a.b[2].#c, d").unwrap();
        assert_eq!(
            projection.0,
            vec![
                Path(vec![bare("a"), bare("b"), Step::Index(2), Step::Name(Name::Placeholder("#c".into()))]),
                Path(vec![bare("d")])
            ]
        );
    }

    #[test]
    fn and_binds_tighter_than_or_and_not_tighter_than_and() {
        let c = parse_condition(ExpressionKind::Condition, "a = :a OR NOT b = :b AND c < :c").unwrap();
        assert_eq!(c.to_string(), "a = :a OR NOT b = :b AND c < :c");
        let Condition::Or(_, right) = c else { panic!("OR at the top: {c:?}") };
        let Condition::And(left, _) = *right else { panic!("AND under OR") };
        assert!(matches!(*left, Condition::Not(_)));
    }

    #[test]
    fn keywords_are_case_insensitive() {
        let c = parse_condition(ExpressionKind::Filter, "a between :x and :y or b in (:p, :q)").unwrap();
        assert_eq!(c.to_string(), "a BETWEEN :x AND :y OR b IN (:p, :q)");
    }

    #[test]
    fn update_clauses_in_any_order_once_each() {
        let u = parse_update(
            "REMOVE x, y[1] SET a = a + :n, b = list_append(if_not_exists(b, :empty), :more) ADD s :v DELETE t :w",
        )
        .unwrap();
        assert_eq!(
            u.to_string(),
            "SET a = a + :n, b = list_append(if_not_exists(b, :empty), :more) REMOVE x, y[1] ADD s :v DELETE t :w"
        );
        let twice = parse_update("SET a = :a SET b = :b").unwrap_err();
        assert_eq!(
            twice.message,
            "Invalid UpdateExpression: The \"SET\" section can only be used once in an update expression;"
        );
    }

    #[test]
    fn syntax_errors_name_the_token() {
        let e = parse_update("SET a = :a,").unwrap_err();
        assert_eq!(e.message, "Invalid UpdateExpression: Syntax error; token: \",\", near: \":a,\"");
        let e = parse_update("SET a = ").unwrap_err();
        assert_eq!(e.message, "Invalid UpdateExpression: Syntax error; token: \"<EOF>\", near: \"=\"");
        let e = parse_condition(ExpressionKind::Condition, "a = = :b").unwrap_err();
        assert_eq!(e.message, "Invalid ConditionExpression: Syntax error; token: \"=\", near: \"= = :b\"");
        let e = parse_update("INVALID SYNTAX HERE").unwrap_err();
        assert_eq!(e.message, "Invalid UpdateExpression: Syntax error; token: \"INVALID\", near: \"INVALID SYNTAX\"");
        let e = parse_projection("!!").unwrap_err();
        assert_eq!(e.message, "Invalid ProjectionExpression: Syntax error; token: \"!\", near: \"!!\"");
        let e = parse_condition(ExpressionKind::Condition, "#has_air_conditioner").unwrap_err();
        assert_eq!(
            e.message,
            "Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \"#has_air_conditioner\""
        );
        let e = parse_projection("").unwrap_err();
        assert_eq!(e.message, "Invalid ProjectionExpression: The expression can not be empty;");
    }
}
