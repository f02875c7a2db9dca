//! DynamoDB's expression language: condition, update, key condition, filter and projection
//! expressions, parsed once into syntax trees (winnow), checked, and evaluated against items.
//!
//! winnow was chosen over nom, pest and chumsky: it is a maintained successor of nom's combinator
//! style, fast, with parsers as plain Rust functions (no grammar file to keep in step), and it reports
//! the offset where parsing stopped, which DynamoDB's "Syntax error; token: …" messages need.

pub mod ast;
pub mod check;
pub mod condition;
pub mod document;
pub mod parse;
pub mod projection;
#[cfg(test)]
mod roundtrip;
pub mod update;

pub use check::ExpressionSet;
pub use document::{DocumentPath, Placeholders, Segment};
pub use parse::ExpressionKind;
