//! Why a request is refused before anything runs, as typed values: [`Disagreement`]s between
//! the database and the files (exit 32) and [`Refusal`]s of the request itself (exit 20). Each
//! carries the versions and paths at fault; its `Display` says what to do.

use std::path::PathBuf;

/// One way the database and the migration files disagree (what `migrate` refuses with 32).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Disagreement {
    /// A version is applied (or dirty) in the database but has no file in this image.
    UnknownApplied {
        /// The version.
        version: i64,
        /// Its recorded description.
        description: String,
        /// It is marked dirty.
        dirty: bool,
    },
    /// A version was applied from a file whose checksum differs from the one here.
    Drift {
        /// The version.
        version: i64,
        /// The file here.
        file: PathBuf,
        /// The checksum in the database.
        recorded: String,
        /// The checksum of the file here.
        on_disk: String,
        /// It is also marked dirty.
        dirty: bool,
    },
    /// A version is marked dirty: it may be partly applied.
    Dirty {
        /// The version.
        version: i64,
        /// Its file.
        file: PathBuf,
        /// A rollback was undoing it (`@NO_TRANSACTION`) and stopped part-way: rerunning that
        /// rollback resumes the undo.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        undoing: bool,
    },
    /// A pending file is older than the newest applied version.
    OutOfOrder {
        /// The pending version.
        version: i64,
        /// Its file.
        file: PathBuf,
        /// The newest applied version.
        newest_applied: i64,
    },
    /// Our ledger is empty but another tool's history table has rows: this database is managed
    /// by that tool, and applying every file would re-run its migrations.
    ForeignHistory {
        /// The tool.
        tool: String,
        /// Its history table.
        table: String,
        /// How many rows it has.
        rows: usize,
    },
    /// `baseline --from`: the other tool's history has dirty or failed rows.
    ForeignHistoryBad {
        /// The tool.
        tool: String,
        /// Its history table.
        table: String,
        /// The rows at fault, described.
        rows: Vec<String>,
    },
    /// `baseline --from`: the other tool's history names versions with no file here.
    ForeignVersionsUnknown {
        /// What is missing, one line each.
        missing: Vec<String>,
    },
    /// `baseline`: our ledger already has rows.
    LedgerNotEmpty {
        /// How many.
        rows: usize,
    },
    /// A rollback (`--to-image` above all) meets a version this image has no file for whose
    /// ledger row keeps no undo (applied before undo was kept), or keeps it as irreversible.
    CannotUndo {
        /// The version.
        version: i64,
        /// Its recorded description.
        description: String,
        /// It is irreversible (else: applied before undo was stored).
        irreversible: bool,
    },
    /// The undo a ledger row keeps does not match its checksum, or its file in this image.
    StoredUndoBad {
        /// The version.
        version: i64,
        /// Its recorded description.
        description: String,
        /// What does not match.
        why: String,
    },
    /// The live schema differs from the snapshot stored after the last run that did work, at
    /// the version the database is still at: someone changed it by hand since.
    SchemaDrift {
        /// The version the snapshot was stored at.
        version: i64,
        /// Each object added, removed or changed since.
        changes: Vec<crate::snapshot::diff::Change>,
    },
    /// A rollback was asked for while a forward migration is half applied.
    PartlyApplied {
        /// The version.
        version: i64,
        /// Its recorded description.
        description: String,
        /// Statements done so far.
        statements_done: i64,
    },
}

fn short(sum: &str) -> &str {
    sum.get(..12).unwrap_or(sum)
}

impl std::fmt::Display for Disagreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Disagreement::UnknownApplied {
                version,
                description,
                dirty,
            } => write!(
                f,
                "version {version} ({description}) is {} in the database but has no file in this image; deploy the image that has it, or set MIGRATE_ALLOW_NEWER_SCHEMA=true if an older image is expected here",
                if *dirty { "marked dirty" } else { "applied" }
            ),
            Disagreement::Drift {
                version,
                file,
                recorded,
                on_disk,
                dirty,
            } => write!(
                f,
                "version {version} ({}) {}: checksum {} in the database, {} on disk; restore the file, or run `crdb-migrate repair --version {version} --accept-checksum` if the edit is deliberate",
                file.display(),
                if *dirty {
                    "is partly applied (dirty) and its file changed since"
                } else {
                    "was applied from a different file"
                },
                short(recorded),
                short(on_disk),
            ),
            Disagreement::Dirty {
                version,
                file,
                undoing: false,
            } => write!(
                f,
                "version {version} ({}) is marked dirty: it may be partly applied; check the database by hand, then run `crdb-migrate repair --version {version} --mark-applied` or `--mark-not-applied`",
                file.display()
            ),
            Disagreement::Dirty {
                version,
                file,
                undoing: true,
            } => write!(
                f,
                "version {version} ({}) is being undone: a rollback stopped part-way through its undo; run that rollback again to resume it, or check the database by hand, then run `crdb-migrate repair --version {version} --mark-applied` or `--mark-not-applied`",
                file.display()
            ),
            Disagreement::OutOfOrder {
                version,
                file,
                newest_applied,
            } => write!(
                f,
                "version {version} ({}) is pending but older than the newest applied version {newest_applied}; renumber it above {newest_applied}, or set MIGRATE_ALLOW_OUT_OF_ORDER=true to apply it anyway",
                file.display()
            ),
            Disagreement::ForeignHistory { tool, table, rows } => write!(
                f,
                "the database has no crdb-migrate ledger rows, but {table} ({tool}'s history) has {rows} row(s): this project is managed by {tool}, and migrating would run its migrations again; record what {tool} applied with `crdb-migrate baseline --from {tool}`, or set MIGRATE_IGNORE_FOREIGN_HISTORY=true to apply every file anyway"
            ),
            Disagreement::ForeignHistoryBad { tool, table, rows } => write!(
                f,
                "{table} ({tool}'s history) has dirty or failed rows: {}; fix them with {tool} first, then run the baseline again",
                rows.join("; ")
            ),
            Disagreement::ForeignVersionsUnknown { missing } => {
                write!(f, "baseline refused: {}", missing.join("; "))
            }
            Disagreement::LedgerNotEmpty { rows } => write!(
                f,
                "baseline refused: the ledger already has {rows} row(s); a baseline only starts a ledger (use `repair --mark-applied` for single versions)"
            ),
            Disagreement::CannotUndo {
                version,
                description,
                irreversible,
            } => write!(
                f,
                "version {version} ({description}) is applied, has no file in this image, and cannot be undone from here: {}; nothing was undone; undo it with the image that has its file, or by hand and then `crdb-migrate repair --version {version} --mark-not-applied`",
                if *irreversible {
                    "it is irreversible (its file has no `-- @UNDO` section)"
                } else {
                    "it was applied before crdb-migrate kept each migration's undo in the ledger"
                }
            ),
            Disagreement::StoredUndoBad {
                version,
                description,
                why,
            } => write!(
                f,
                "version {version} ({description}): {why}; nothing was undone; restore the row's undo_sql, undo_no_transaction and undo_checksum, or undo it with the image that has its file"
            ),
            Disagreement::SchemaDrift { version, changes } => {
                write!(
                    f,
                    "the schema was changed by hand since version {version} was reached ({} object(s)): ",
                    changes.len()
                )?;
                let named: Vec<String> = changes.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "{}; put the change in a migration, or undo it",
                    named.join("; ")
                )
            }
            Disagreement::PartlyApplied {
                version,
                description,
                statements_done,
            } => write!(
                f,
                "version {version} ({description}) is partly applied (dirty, {statements_done} statement(s) done): run `crdb-migrate migrate` to finish it, or repair it, before rolling back"
            ),
        }
    }
}

/// Why a rollback cannot undo a migration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MissingUndo {
    /// The version has no file in this image and its row keeps no undo (it was applied before
    /// undo was kept in the ledger).
    NoFile {
        /// The version.
        version: i64,
        /// Its recorded description.
        description: String,
    },
    /// The file has no `-- @UNDO` section.
    Irreversible {
        /// The version.
        version: i64,
        /// Its file.
        file: PathBuf,
    },
    /// The version has no file in this image and its row records it as irreversible.
    IrreversibleKept {
        /// The version.
        version: i64,
        /// Its recorded description.
        description: String,
    },
}

impl std::fmt::Display for MissingUndo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MissingUndo::NoFile {
                version,
                description,
            } => write!(
                f,
                "version {version} ({description}) has no file in this image and its ledger row keeps no undo (it was applied before crdb-migrate kept undo in the ledger)"
            ),
            MissingUndo::IrreversibleKept {
                version,
                description,
            } => write!(
                f,
                "version {version} ({description}) is irreversible: its file had no `-- @UNDO` section"
            ),
            MissingUndo::Irreversible { version, file } => write!(
                f,
                "version {version} ({}) is irreversible: it has no `-- @UNDO` section",
                file.display()
            ),
        }
    }
}

/// A request refused before anything ran because of what was asked (exit 20).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// `migrate --target` names no file's version.
    TargetNotAFile {
        /// The target.
        target: i64,
        /// The migrations directory.
        dir: String,
    },
    /// `migrate --target` is below the current version.
    TargetBelowCurrent {
        /// The target.
        target: i64,
        /// The current version.
        current: i64,
    },
    /// `rollback --count` is 0 or more than is applied.
    BadCount {
        /// The count given.
        count: usize,
        /// How many are applied.
        applied: usize,
    },
    /// `rollback --target` is negative.
    NegativeTarget {
        /// The target.
        target: i64,
    },
    /// `rollback --target` is neither applied nor a file.
    UnknownRollbackTarget {
        /// The target.
        target: i64,
    },
    /// `rollback --to-image` in an image without migration files.
    NoFilesInImage,
    /// Undo SQL is missing for migrations the rollback would cross.
    MissingUndo(Vec<MissingUndo>),
    /// `baseline --from TOOL`: that tool's history table is not in this database.
    NoForeignHistory {
        /// The tool.
        tool: String,
        /// The table looked for.
        table: String,
        /// Another tool whose history this database does have (with rows), and its table.
        other: Option<(String, String)>,
    },
    /// `repair` needs a file the image does not have.
    RepairNoFile {
        /// The version.
        version: i64,
        /// What repair was asked to do.
        action: &'static str,
    },
    /// `repair` needs a ledger row that is not there.
    RepairNoRow {
        /// The version.
        version: i64,
        /// What repair was asked to do.
        action: &'static str,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::TargetNotAFile { target, dir } => write!(
                f,
                "target version {target} is not a migration file in {dir}; choose one of the file versions"
            ),
            Refusal::TargetBelowCurrent { target, current } => write!(
                f,
                "target version {target} is below the current version {current}; use `crdb-migrate rollback --target {target}` to go down"
            ),
            Refusal::BadCount { count, applied } => write!(
                f,
                "rollback --count {count}: {applied} migration(s) are applied; give a count from 1 to {applied}, or `--target 0` to undo them all"
            ),
            Refusal::NegativeTarget { target } => {
                write!(f, "rollback target {target} is negative")
            }
            Refusal::UnknownRollbackTarget { target } => write!(
                f,
                "rollback target {target} is neither applied nor a migration file; use 0 to undo everything"
            ),
            Refusal::NoFilesInImage => f.write_str(
                "rollback --to-image: this image has no migration files, so it would undo every migration; check MIGRATIONS_DIR, or use `rollback --target 0` to mean that",
            ),
            Refusal::MissingUndo(missing) => {
                f.write_str("rollback refused before anything ran:")?;
                for m in missing {
                    write!(f, "\n{m}")?;
                }
                Ok(())
            }
            Refusal::NoForeignHistory {
                tool,
                table,
                other: Some((other, other_table)),
            } => write!(
                f,
                "baseline --from {tool}: this database has no {table} table as {tool} makes it, but {other_table} is {other}'s history: use `baseline --from {other}` (importing the files with `import --from {other}`)"
            ),
            Refusal::NoForeignHistory { tool, table, .. } => write!(
                f,
                "baseline --from {tool}: there is no {table} table as {tool} makes it in this database (in the current search path); check DATABASE_URL, or use `baseline --version V`"
            ),
            Refusal::RepairNoFile { version, action } => {
                write!(f, "version {version} has no migration file; {action}")
            }
            Refusal::RepairNoRow { version, action } => write!(f, "version {version} {action}"),
        }
    }
}
