//! Human and JSON renderings of status, plan, verify and lease results, kept apart from the
//! operations that compute them.

use crdb_migrate::{Direction, LeaseInfo, Migration, Plan, State, Status, Warning};

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
/// `warnings` are the set's (`lint_all`), shown under the steps they belong to.
pub(crate) fn plan_text(p: &Plan, warnings: &[Warning]) -> String {
    let mut out = format!(
        "current version {}, target {}, {} step(s)\n",
        p.current,
        p.target,
        p.steps.len()
    );
    for s in &p.steps {
        let m = s.migration;
        let arrow = match s.direction {
            Direction::Up => "apply",
            Direction::Down => "undo ",
        };
        let mut notes = Vec::new();
        if m.no_transaction {
            notes.push("no transaction".to_string());
        }
        if s.resume_from > 0 {
            notes.push(format!("resume after statement {}", s.resume_from));
        }
        out.push_str(&format!(
            "{arrow} {} {} ({}){}\n",
            m.version,
            m.description,
            m.path.display(),
            if notes.is_empty() {
                String::new()
            } else {
                format!(" [{}]", notes.join(", "))
            }
        ));
        for w in warnings.iter().filter(|w| w.version == m.version) {
            out.push_str(&format!("      warning: {}\n", w.message));
        }
    }
    out
}

/// `plan --json`: stable keys `current`, `target`, `steps[]` with `version`, `description`,
/// `direction`, `file`, `no_transaction`, `resume_from`, `warnings[]`.
pub(crate) fn plan_json(p: &Plan, warnings: &[Warning]) -> serde_json::Value {
    serde_json::json!({
        "current": p.current,
        "target": p.target,
        "steps": p.steps.iter().map(|s| serde_json::json!({
            "version": s.migration.version,
            "description": s.migration.description,
            "direction": s.direction,
            "file": s.migration.path,
            "no_transaction": s.migration.no_transaction,
            "resume_from": s.resume_from,
            "warnings": warnings.iter().filter(|w| w.version == s.migration.version).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
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
