//! `verify`: the directory checked offline. Problems are an error (exit 20), lint findings
//! warnings. Without `ENVIRONMENT`, every environment sub-directory is checked merged with the
//! common files too, so CI catches what any environment's pod would refuse.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::lint::{self, Warning};
use crate::source::{self, Migration};

/// Checks `dir` (with `environment`, or each environment in turn when `None`).
pub fn verify(dir: &Path, environment: Option<&str>) -> Result<(Vec<Migration>, Vec<Warning>)> {
    let mut environments: Vec<Option<String>> = vec![environment.map(str::to_string)];
    if environment.is_none()
        && let Ok(entries) = std::fs::read_dir(dir)
    {
        let mut subs: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        subs.sort();
        environments.extend(subs.into_iter().map(Some));
    }
    let mut set: Vec<Migration> = Vec::new();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut problems: Vec<source::Problem> = Vec::new();
    let mut seen_problems: HashSet<String> = HashSet::new();
    for env in &environments {
        match source::load(dir, env.as_deref()) {
            Ok(loaded) => {
                for m in loaded {
                    if seen.insert(m.path.clone()) {
                        set.push(m);
                    }
                }
            }
            Err(found) => {
                for p in found {
                    if seen_problems.insert(p.to_string()) {
                        problems.push(p);
                    }
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(Error::Source(problems));
    }
    set.sort_by(|a, b| (a.version, &a.path).cmp(&(b.version, &b.path)));
    let warnings = set.iter().flat_map(lint::lint).collect();
    Ok((set, warnings))
}
