//! Human and JSON renderings of status, plan, verify and lease results, kept apart from the
//! operations that compute them.

use crdb_migrate::parts::{Direction, LeaseInfo, State, Step};
use crdb_migrate::{Migration, Plan, Status, Warning};

/// `status` as text.
pub(crate) fn status_text(s: &Status) -> String {
    let mut out = format!("current version: {}\n", s.current_version);
    out.push_str(&format!(
        "{:<20} {:<15} {:<27} {:<9} description\n",
        "version", "state", "applied_at", "checksum"
    ));
    for m in &s.migrations {
        let sum = match m.checksum_matches {
            Some(true) => "ok",
            Some(false) => "CHANGED",
            None => "-",
        };
        // When the files did not load, no row has a file: that says nothing about the image.
        let no_file = m.file.is_none() && s.file_problems.is_empty();
        let state = match (no_file, m.state) {
            (true, State::Dirty) => "dirty, no file",
            (true, _) => "no file here",
            (false, State::Pending) if m.contract => "pending, contract",
            (false, state) => state.as_str(),
        };
        out.push_str(&format!(
            "{:<20} {:<15} {:<27} {:<9} {}\n",
            m.version,
            state,
            m.applied_at.as_deref().unwrap_or("-"),
            sum,
            m.description
        ));
    }
    out.push_str(&format!(
        "pending: {}, dirty: {}, applied without a file here: {}\n",
        s.pending.len(),
        s.dirty.len(),
        s.missing_files.len()
    ));
    for d in &s.disagreements {
        out.push_str(&format!("problem: {d}\n"));
    }
    if !s.file_problems.is_empty() {
        out.push_str(&format!(
            "the migration files did not load ({} problem(s)); showing the database only:\n",
            s.file_problems.len()
        ));
        for p in &s.file_problems {
            out.push_str(&format!("file problem: {p}\n"));
        }
    }
    if let Some(b) = s.phase.boundary {
        out.push_str(&format!(
            "phase boundary: version {b} is @CONTRACT; MIGRATE_PHASE=expand applies {} pending, {} wait for MIGRATE_PHASE=contract\n",
            s.phase.expand.len(),
            s.phase.contract.len()
        ));
    }
    out.push_str(&format!("lease: {}\n", lease_text(s.lease.as_ref(), false)));
    for j in &s.jobs {
        out.push_str(&format!(
            "schema-change {} (inspect: SHOW JOB {})\n",
            j.text(),
            j.id
        ));
    }
    out
}

/// The lease as one line.
pub(crate) fn lease_text(l: Option<&LeaseInfo>, forced: bool) -> String {
    let verb = if forced { "released; was " } else { "" };
    match l {
        None => "no lease table yet".into(),
        Some(l) if l.held => format!(
            "{verb}held by {} (fence {}) until {}",
            l.holder.as_deref().unwrap_or("?"),
            l.fence,
            l.expires_at.as_deref().unwrap_or("?")
        ),
        Some(l) => format!("{verb}free (last fence {})", l.fence),
    }
}

/// `plan` as text.
/// `warnings` are the set's (`lint_all`), shown under the steps they belong to. The phase
/// boundary (the first `@CONTRACT` migration) is a line of its own before that step, or, with
/// `MIGRATE_PHASE=expand`, before the list of migrations held back for the contract phase.
pub(crate) fn plan_text(p: &Plan, warnings: &[Warning]) -> String {
    let mut out = format!(
        "current version {}, target {}, {} step(s){}\n",
        p.current,
        p.target,
        p.steps.len(),
        p.phase
            .map(|ph| format!(" (MIGRATE_PHASE={})", ph.as_str()))
            .unwrap_or_default()
    );
    let boundary = p.boundary();
    for s in &p.steps {
        if boundary == Some(s.migration.version) {
            out.push_str(&boundary_line(s.migration.version));
        }
        out.push_str(&step_line(s, warnings));
    }
    if !p.held_back.is_empty() {
        out.push_str(&boundary_line(p.held_back[0].migration.version));
        out.push_str(&format!(
            "{} migration(s) wait for MIGRATE_PHASE=contract:\n",
            p.held_back.len()
        ));
        for s in &p.held_back {
            out.push_str(&format!("  {}", step_line(s, warnings)));
        }
    }
    out
}

fn boundary_line(version: i64) -> String {
    format!(
        "--- phase boundary: {version} is @CONTRACT; MIGRATE_PHASE=expand stops here, contract applies the rest ---\n"
    )
}

fn step_line(s: &Step, warnings: &[Warning]) -> String {
    let m = &*s.migration;
    let arrow = match s.direction {
        Direction::Up => "apply",
        Direction::Down => "undo ",
    };
    let mut notes = Vec::new();
    if m.no_transaction {
        notes.push("no transaction".to_string());
    }
    if m.contract {
        notes.push("contract".to_string());
    }
    if s.resume_from > 0 {
        notes.push(format!("resume after statement {}", s.resume_from));
    }
    let mut out = format!(
        "{arrow} {} {} ({}){}\n",
        m.version,
        m.description,
        m.path.display(),
        if notes.is_empty() {
            String::new()
        } else {
            format!(" [{}]", notes.join(", "))
        }
    );
    for w in of_version(warnings, m.version) {
        out.push_str(&format!("      warning: {}\n", w.message));
    }
    out
}

fn step_json(s: &Step, warnings: &[Warning]) -> serde_json::Value {
    serde_json::json!({
        "version": s.migration.version,
        "description": s.migration.description,
        "direction": s.direction,
        "file": s.migration.path,
        "no_transaction": s.migration.no_transaction,
        "contract": s.migration.contract,
        "resume_from": s.resume_from,
        "warnings": of_version(warnings, s.migration.version),
    })
}

/// `plan --json`: stable keys `current`, `target`, `phase` (`expand`, `contract` or null),
/// `boundary` (the first `@CONTRACT` version, or null), `steps[]` and `held_back[]` (what waits
/// for the contract phase) with `version`, `description`, `direction`, `file`,
/// `no_transaction`, `contract`, `resume_from`, `warnings[]`.
pub(crate) fn plan_json(p: &Plan, warnings: &[Warning]) -> serde_json::Value {
    serde_json::json!({
        "current": p.current,
        "target": p.target,
        "phase": p.phase,
        "boundary": p.boundary(),
        "steps": p.steps.iter().map(|s| step_json(s, warnings)).collect::<Vec<_>>(),
        "held_back": p.held_back.iter().map(|s| step_json(s, warnings)).collect::<Vec<_>>(),
    })
}

/// `verify` as text.
pub(crate) fn verify_text(set: &[Migration], warnings: &[Warning]) -> String {
    let mut out = format!(
        "{} migration file(s) OK, {} warning(s)\n",
        set.len(),
        warnings.len()
    );
    for w in warnings {
        out.push_str(&format!("warning [{}]: {}\n", w.rule, w.message));
    }
    out
}

/// The warnings of one version, from the set's warnings in version order (as `lint_all` gives
/// them): a binary search, so rendering a plan stays linear in the number of files.
fn of_version(warnings: &[Warning], version: i64) -> &[Warning] {
    let start = warnings.partition_point(|w| w.version < version);
    let len = warnings[start..].partition_point(|w| w.version == version);
    &warnings[start..start + len]
}

/// One target's `status` as a line of a fleet's: `target  version  state  pending=N dirty=[..]`,
/// or the error that kept it from being read.
pub(crate) fn target_status_line(target: &str, s: &Result<Status, crdb_migrate::Error>) -> String {
    match s {
        Ok(s) => format!(
            "{target:<24} {:<20} {:<11} pending={} dirty={:?} lease={}",
            s.current_version,
            s.state_word(),
            s.pending.len(),
            s.dirty,
            s.lease
                .as_ref()
                .and_then(|l| l.holder.as_deref())
                .unwrap_or("-")
        ),
        Err(e) => format!("{target:<24} {:<20} {:<11} {e}", "-", "error"),
    }
}

/// One target's `status --json` object, with `target`; for an error, `target`, `error` and
/// `exit_code`.
pub(crate) fn target_status_json(
    target: &str,
    s: &Result<Status, crdb_migrate::Error>,
) -> serde_json::Value {
    match s {
        Ok(s) => match serde_json::to_value(s) {
            Ok(serde_json::Value::Object(mut m)) => {
                m.insert("target".into(), target.into());
                serde_json::Value::Object(m)
            }
            _ => serde_json::json!({ "target": target }),
        },
        Err(e) => target_error_json(target, e),
    }
}

/// A target whose status or plan could not be had: `target`, `error`, `exit_code`.
pub(crate) fn target_error_json(target: &str, e: &crdb_migrate::Error) -> serde_json::Value {
    serde_json::json!({
        "target": target,
        "error": e.to_string(),
        "exit_code": e.exit().code(),
    })
}
