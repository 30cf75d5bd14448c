//! The plan for `rollback`: which applied rows to undo (newest first), each with its undo —
//! the file's when this image has it, else the one the ledger row keeps — all checked before
//! anything runs. A `@NO_TRANSACTION` undo cut short (the newest row, dirty, with a negative
//! journal) resumes after the undo statements it finished.

use std::borrow::Cow;

use super::stored::{Kept, kept};
use super::{Allow, Direction, Plan, Rollback, Step, check_disagreements, disagreements};
use crate::error::{Error, Result};
use crate::refusal::{Disagreement, MissingUndo, Refusal};
use crate::source::Migration;
use crate::store::ledger::AppliedRow;

/// The plan for `rollback`. Every undo must exist, and every stored one must be intact, before
/// anything runs. No switch of `_allow` relaxes a rollback: it accepts what they accept anyway.
pub fn down<'a>(
    set: &'a [Migration],
    rows: &[AppliedRow],
    how: Rollback,
    _allow: Allow,
) -> Result<Plan<'a>> {
    // Rollback applies nothing, so a pending older file is no reason to refuse it; and a
    // version this image has no file for is undone with the undo its row keeps (or refused,
    // naming it, below).
    let allow = Allow {
        out_of_order: true,
        newer_schema: true,
    };
    let resuming = undo_in_progress(rows);
    let found: Vec<Disagreement> = disagreements(set, rows, allow)
        .into_iter()
        .filter(|d| !is_resumable(d, resuming))
        .collect();
    check_disagreements(found)?;
    let cur = rows.iter().map(|r| r.version).max().unwrap_or(0);
    let chosen = to_undo(set, rows, how)?;
    // A half-applied forward migration would be undone by SQL written for a whole one.
    if let Some(r) = rows
        .iter()
        .find(|r| r.dirty && Some(r.version) != resuming.map(|r| r.version))
    {
        return Err(Error::Disagreement(vec![Disagreement::PartlyApplied {
            version: r.version,
            description: r.description.clone(),
            statements_done: r.statements_done,
        }]));
    }
    let steps = undo_steps(set, &chosen, how == Rollback::ToImage, resuming)?;
    let target = rows
        .iter()
        .map(|r| r.version)
        .filter(|v| !chosen.iter().any(|c| c.version == *v))
        .max()
        .unwrap_or(0);
    Ok(Plan {
        current: cur,
        target,
        steps,
        phase: None,
        held_back: Vec::new(),
    })
}

/// The `@NO_TRANSACTION` undo a rollback was cut short in: the newest row, dirty, its journal
/// negative (`-(k + 1)` after k undo statements). Undo runs newest first, so it is the newest.
fn undo_in_progress(rows: &[AppliedRow]) -> Option<&AppliedRow> {
    rows.iter()
        .max_by_key(|r| r.version)
        .filter(|r| r.dirty && r.statements_done < 0)
}

/// Is `d` only the dirty mark of the undo in progress (which the rollback resumes)?
fn is_resumable(d: &Disagreement, resuming: Option<&AppliedRow>) -> bool {
    let Some(r) = resuming else {
        return false;
    };
    match d {
        Disagreement::Dirty { version, .. } => *version == r.version,
        Disagreement::UnknownApplied { version, dirty, .. } => *dirty && *version == r.version,
        _ => false,
    }
}

/// The applied rows `how` picks to undo, newest first; a count or target that does not fit
/// what is applied is refused.
fn to_undo<'r>(
    set: &[Migration],
    rows: &'r [AppliedRow],
    how: Rollback,
) -> Result<Vec<&'r AppliedRow>> {
    let mut applied: Vec<&AppliedRow> = rows.iter().collect();
    applied.sort_by_key(|r| std::cmp::Reverse(r.version));
    let above = |t: i64| applied.iter().copied().filter(|r| r.version > t).collect();
    match how {
        Rollback::Count(n) => {
            // A typo here would undo everything: --count must match what is applied.
            if n == 0 || n > applied.len() {
                return Err(Error::Refused(Refusal::BadCount {
                    count: n,
                    applied: applied.len(),
                }));
            }
            Ok(applied.into_iter().take(n).collect())
        }
        Rollback::Target(t) => {
            if t < 0 {
                return Err(Error::Refused(Refusal::NegativeTarget { target: t }));
            }
            if t != 0 && !rows.iter().any(|r| r.version == t) && !set.iter().any(|m| m.version == t)
            {
                return Err(Error::Refused(Refusal::UnknownRollbackTarget { target: t }));
            }
            Ok(above(t))
        }
        // An image without files would undo everything: that is never what a deploy meant.
        Rollback::ToImage => match set.last() {
            Some(newest) => Ok(above(newest.version)),
            None => Err(Error::Refused(Refusal::NoFilesInImage)),
        },
    }
}

/// A down step for each of `chosen`, in order, with the file's undo or the stored one. Refused,
/// naming every one at fault, when any has no undo: exit 32 when the ledger says so (a version
/// without a file whose row keeps no undo or keeps it as irreversible; and always for
/// `--to-image`, whose versions are all newer than the image), 20 when it is an irreversible file
/// of this image (a request that cannot be met); and when a stored undo does not match its
/// checksum or its file (32: the ledger was changed).
fn undo_steps<'a>(
    set: &'a [Migration],
    chosen: &[&AppliedRow],
    to_image: bool,
    resuming: Option<&AppliedRow>,
) -> Result<Vec<Step<'a>>> {
    let mut steps = Vec::new();
    let mut missing = Vec::new();
    let mut bad = Vec::new();
    for r in chosen {
        let file = set.iter().find(|m| m.version == r.version);
        let stored = kept(r, file);
        if let Kept::Bad(why) = &stored {
            bad.push(Disagreement::StoredUndoBad {
                version: r.version,
                description: r.description.clone(),
                why: why.clone(),
            });
        }
        let migration = match (file, stored) {
            (Some(m), _) if m.down.is_none() => {
                missing.push(MissingUndo::Irreversible {
                    version: m.version,
                    file: m.path.clone(),
                });
                continue;
            }
            (Some(m), _) => Cow::Borrowed(m),
            (None, Kept::Undo(m)) => Cow::Owned(*m),
            (None, Kept::Bad(_)) => continue,
            (None, Kept::Nothing) => {
                missing.push(MissingUndo::NoFile {
                    version: r.version,
                    description: r.description.clone(),
                });
                continue;
            }
            (None, Kept::Irreversible) => {
                missing.push(MissingUndo::IrreversibleKept {
                    version: r.version,
                    description: r.description.clone(),
                });
                continue;
            }
        };
        let resume_from = match resuming {
            Some(p) if p.version == r.version && migration.no_transaction => {
                usize::try_from(-p.statements_done - 1).unwrap_or(0)
            }
            _ => 0,
        };
        steps.push(Step {
            migration,
            direction: Direction::Down,
            resume_from,
        });
    }
    if !bad.is_empty() {
        return Err(Error::Disagreement(bad));
    }
    let from_ledger = |m: &MissingUndo| !matches!(m, MissingUndo::Irreversible { .. });
    if missing.is_empty() {
        Ok(steps)
    } else if to_image || missing.iter().any(from_ledger) {
        Err(Error::Disagreement(
            missing.iter().map(cannot_undo).collect(),
        ))
    } else {
        Err(Error::Refused(Refusal::MissingUndo(missing)))
    }
}

/// The disagreement naming a version `missing` says cannot be undone from here.
fn cannot_undo(missing: &MissingUndo) -> Disagreement {
    let (version, description, irreversible) = match missing {
        MissingUndo::NoFile {
            version,
            description,
        } => (*version, description.clone(), false),
        MissingUndo::IrreversibleKept {
            version,
            description,
        } => (*version, description.clone(), true),
        MissingUndo::Irreversible { version, file } => (*version, file.display().to_string(), true),
    };
    Disagreement::CannotUndo {
        version,
        description,
        irreversible,
    }
}
