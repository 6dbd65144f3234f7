//! How zhishi's errors read: one rule for every error type in the crate.
//!
//! An error's message describes its own layer (`cannot read /data/kg.tsv`); its cause is
//! reached through [`std::error::Error::source`], never printed again in the message. A chain
//! therefore reads each cause once, and [`report`] joins it for people:
//! `cannot read /data/kg.tsv: No such file or directory (os error 2)`. The CLI, the HTTP
//! service and `zhishi run`'s per-document error records all print errors through it.

use std::error::Error;

/// What a JSON value is, for messages that say what a file held where it expected something
/// else (`"label" is a number; expected a string`).
pub fn json_kind(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The error and its chain of causes, outermost first, joined by `": "`.
///
/// ```
/// use std::io;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("cannot read kg.tsv")]
/// struct ReadError(#[source] io::Error);
///
/// let err = ReadError(io::Error::new(io::ErrorKind::NotFound, "no such file"));
/// assert_eq!(zhishi::error::report(&err), "cannot read kg.tsv: no such file");
/// ```
pub fn report(err: &(dyn Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cause = err.source();
    while let Some(next) = cause {
        let text = next.to_string();
        if !text.is_empty() {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = next.source();
    }
    out
}
