//! Diesel's layout: one directory `<version>_<name>/` per migration holding `up.sql`,
//! optionally `down.sql` and `metadata.toml` (`run_in_transaction = false`).

use std::path::{Path, PathBuf};

use super::{file_name, is_crlf, read_text};
use crate::import::{Foreign, ImportProblem, OrderKey, lines_of, problem};

pub(super) fn read(src: &Path, problems: &mut Vec<ImportProblem>) -> Vec<Foreign> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(src) else {
        problems.push(problem(src, None, "cannot read the directory"));
        return out;
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !file_name(p).starts_with('.') && p.join("up.sql").is_file())
        .collect();
    dirs.sort();
    for dir in dirs {
        let dir_name = file_name(&dir);
        let (raw, name) = dir_name.split_once('_').unwrap_or((&dir_name, ""));
        let version = raw.replace('-', "");
        let up_path = dir.join("up.sql");
        let down_path = dir.join("down.sql");
        let meta_path = dir.join("metadata.toml");
        let Some(up_text) = read_text(&up_path, problems) else {
            continue;
        };
        let mut from = vec![up_path.clone()];
        let down_text = if down_path.is_file() {
            from.push(down_path.clone());
            match read_text(&down_path, problems) {
                Some(t) => Some(t),
                None => continue,
            }
        } else {
            None
        };
        let mut no_transaction = false;
        if meta_path.is_file() {
            from.push(meta_path.clone());
            if let Some(text) = read_text(&meta_path, problems) {
                for l in lines_of(&meta_path, &text) {
                    let c = l.content().split('#').next().unwrap_or("").trim();
                    if c.is_empty() {
                        continue;
                    }
                    let (key, value) = c.split_once('=').unwrap_or((c, ""));
                    match (key.trim(), value.trim()) {
                        ("run_in_transaction", "false") => no_transaction = true,
                        ("run_in_transaction", "true") => {}
                        _ => problems.push(problem(
                            &meta_path,
                            Some(l.line),
                            format!("the Diesel setting `{c}` has no crdb-migrate equivalent"),
                        )),
                    }
                }
            }
        }
        out.push(Foreign {
            order: OrderKey::Text(version.clone()),
            original: version,
            name: name.to_string(),
            crlf: is_crlf(&up_text) || down_text.as_deref().is_some_and(is_crlf),
            up: lines_of(&up_path, &up_text),
            down: down_text.as_deref().map(|t| lines_of(&down_path, t)),
            no_transaction,
            from,
        });
    }
    out
}
