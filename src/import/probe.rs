//! The one surface of `import` the core load and run paths use: is the migrations directory in
//! another tool's layout (the loader's hint), and does another tool's history table hold rows
//! (the check that a first `migrate` never re-runs a project another tool manages). The rest of
//! `import` (converting directories, reading whole histories) serves only the `import` and
//! `baseline` commands.

use std::path::Path;

use tokio_postgres::Client;

use super::Tool;
use super::history;

/// A history table of another tool, with rows: the tool, the table, how many rows say something.
pub(crate) type ForeignRows = (Tool, String, usize);

/// The loader's one-sentence hint when `dir` is in another tool's layout (naming the `import`
/// command that converts it); `None` for our own layout or an unknown one.
pub(crate) fn layout_hint(dir: &Path) -> Option<String> {
    super::detect::layout_hint(dir)
}

/// Which of the known tools' history tables exist in the search path: one simple query, which
/// a run sends in the same flight as its first read of the ledger.
pub(crate) async fn history_tables(client: &Client) -> Result<Vec<String>, tokio_postgres::Error> {
    history::existing_tables(client).await
}

/// The first known tool whose history table has rows, among the `present` ones
/// [`history_tables`] found (asked in the run's first flight).
pub(crate) async fn foreign_history(
    client: &Client,
    present: &[String],
) -> Result<Option<ForeignRows>, tokio_postgres::Error> {
    history::any_foreign_history_among(client, present).await
}
