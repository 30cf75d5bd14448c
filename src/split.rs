//! The SQL statement splitter: cuts a script at top-level `;`, aware of quotes, `E''` strings,
//! dollar quotes, quoted identifiers and comments.
//!
//! STUB: being written; the signatures below are the contract.

/// One statement of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The statement text without its trailing `;`, trimmed.
    pub text: String,
    /// The 1-based line of the script where the statement starts.
    pub line: usize,
    /// A `-- @REPEAT_UNTIL_ZERO` comment line preceded it.
    pub repeat_until_zero: bool,
}

/// Splits a script into its statements, leaving out empty ones.
pub fn split(_sql: &str) -> Vec<Statement> {
    Vec::new()
}
