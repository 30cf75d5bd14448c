//! The parts of one migration file's text once its `-- @UNDO` marker is found: what the parser
//! and the directive reader both look at.

use std::path::Path;

use super::split::Statement;

/// The parts of a file's text, once the marker is found.
pub(super) struct Body<'a> {
    pub(super) path: &'a Path,
    pub(super) lines: Vec<&'a str>,
    /// The 0-based index of the (first) marker line.
    pub(super) marker: Option<usize>,
    pub(super) up_statements: Vec<Statement>,
    pub(super) down_statements: Option<Vec<Statement>>,
}

impl Body<'_> {
    /// The 1-based file line of the first forward statement (`usize::MAX` when there is none).
    pub(super) fn first_sql_line(&self) -> usize {
        self.up_statements.first().map_or(usize::MAX, |s| s.line)
    }
}
