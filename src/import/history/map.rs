//! A foreign history's versions mapped onto the files of a migrations directory: through the
//! import mapping file when there is one, else read as our versions.

use std::path::Path;

use super::ForeignHistory;
use crate::import::{MAPPING_FILE, Mapping, Tool, read_mapping, version_key};

/// Our versions for what `history` says is applied, ascending, using `dir`'s import mapping
/// file ([`MAPPING_FILE`]) when there is one, else reading the history's versions as
/// ours. The error lists every version with no file here (and a mapping written for another
/// tool). `history.bad` is not looked at: the caller refuses those first.
pub fn map_versions(
    dir: &Path,
    history: &ForeignHistory,
    tool: Tool,
) -> Result<Vec<i64>, Vec<String>> {
    let mut out = match read_mapping(dir) {
        Err(e) => return Err(vec![e]),
        Ok(Some(mapping)) => through_mapping(dir, history, tool, mapping)?,
        Ok(None) => as_our_versions(dir, history, tool)?,
    };
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// golang-migrate's single row names the current version, which must have a file; Flyway's
/// baseline version usually has none.
fn through_needs_file(tool: Tool) -> bool {
    tool == Tool::GolangMigrate
}

/// The error for a version `history` says is applied that has no file in `dir`.
fn missing(history: &ForeignHistory, dir: &Path, v: &str, how: &str) -> String {
    format!(
        "{} says version {v} is applied, but no migration file in {} has it ({how})",
        history.table,
        dir.display()
    )
}

/// `out`, unless any `errors` (duplicates next to each other dropped).
fn unless_errors(out: Vec<i64>, mut errors: Vec<String>) -> Result<Vec<i64>, Vec<String>> {
    if !errors.is_empty() {
        errors.dedup();
        return Err(errors);
    }
    Ok(out)
}

/// The versions through the import mapping file, which must be `tool`'s.
fn through_mapping(
    dir: &Path,
    history: &ForeignHistory,
    tool: Tool,
    mapping: Mapping,
) -> Result<Vec<i64>, Vec<String>> {
    let Mapping {
        tool: mapped_tool,
        rows,
    } = mapping;
    if mapped_tool != tool {
        return Err(vec![format!(
            "{} was written by an import from {mapped_tool}, not {tool}",
            dir.join(MAPPING_FILE).display()
        )]);
    }
    let how = format!("not in {MAPPING_FILE}");
    let (mut out, mut errors) = (Vec::new(), Vec::new());
    for v in &history.applied {
        match rows.iter().find(|(o, _)| o == v) {
            Some((_, ours)) => out.push(*ours),
            None => errors.push(missing(history, dir, v, &how)),
        }
    }
    if let Some(t) = &history.applied_through {
        let limit = version_key(tool, t);
        if through_needs_file(tool) && !rows.iter().any(|(o, _)| o == t) {
            errors.push(missing(history, dir, t, &how));
        }
        out.extend(
            rows.iter()
                .filter(|(o, _)| version_key(tool, o) <= limit)
                .map(|(_, ours)| *ours),
        );
    }
    unless_errors(out, errors)
}

/// The versions read as ours, each of which must be a file's in `dir`.
fn as_our_versions(
    dir: &Path,
    history: &ForeignHistory,
    tool: Tool,
) -> Result<Vec<i64>, Vec<String>> {
    let files: Vec<i64> = match crate::source::load(dir, None) {
        Ok(set) => set.iter().map(|m| m.version).collect(),
        Err(problems) => return Err(problems.iter().map(|p| p.to_string()).collect()),
    };
    let how = format!("and there is no {MAPPING_FILE} to map it");
    let (mut out, mut errors) = (Vec::new(), Vec::new());
    for v in &history.applied {
        match v.parse::<i64>().ok().filter(|n| files.contains(n)) {
            Some(n) => out.push(n),
            None => errors.push(missing(history, dir, v, &how)),
        }
    }
    if let Some(t) = &history.applied_through {
        match t.parse::<i64>() {
            Ok(limit) => {
                if through_needs_file(tool) && !files.contains(&limit) {
                    errors.push(missing(history, dir, t, &how));
                }
                out.extend(files.iter().filter(|&&f| f <= limit));
            }
            Err(_) => errors.push(missing(history, dir, t, &how)),
        }
    }
    unless_errors(out, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::history::table_of;

    fn history(tool: Tool, applied: &[&str], through: Option<&str>) -> ForeignHistory {
        ForeignHistory {
            tool,
            table: table_of(tool).into(),
            applied: applied.iter().map(|s| s.to_string()).collect(),
            applied_through: through.map(str::to_string),
            bad: vec![],
            rows: applied.len(),
        }
    }

    #[test]
    fn map_with_mapping_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(MAPPING_FILE),
            "# c\ntool\tflyway\noriginal_version\tversion\tfrom\n1\t1\tV1__a.sql\n1.1\t2\tV1_1__b.sql\n2\t3\tV2__c.sql\n",
        )
        .expect("write");
        let h = history(Tool::Flyway, &["1", "1.1"], None);
        assert_eq!(map_versions(dir.path(), &h, Tool::Flyway), Ok(vec![1, 2]));
        let h = history(Tool::Flyway, &["2"], Some("1.1"));
        assert_eq!(
            map_versions(dir.path(), &h, Tool::Flyway),
            Ok(vec![1, 2, 3])
        );
        let h = history(Tool::Flyway, &["3"], None);
        let e = map_versions(dir.path(), &h, Tool::Flyway).expect_err("no file");
        assert!(e[0].contains("version 3"), "{e:?}");
        let e = map_versions(dir.path(), &h, Tool::Goose).expect_err("other tool");
        assert!(e[0].contains("not goose"), "{e:?}");
    }

    #[test]
    fn map_without_mapping_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        for v in [1, 2, 5] {
            std::fs::write(dir.path().join(format!("{v}_m.sql")), "SELECT 1;").expect("write");
        }
        let h = history(Tool::GolangMigrate, &["2"], Some("2"));
        assert_eq!(
            map_versions(dir.path(), &h, Tool::GolangMigrate),
            Ok(vec![1, 2])
        );
        let h = history(Tool::GolangMigrate, &["3"], Some("3"));
        let e = map_versions(dir.path(), &h, Tool::GolangMigrate).expect_err("no file 3");
        assert!(e.iter().all(|m| m.contains("version 3")), "{e:?}");
        let h = history(Tool::Dbmate, &["5", "1"], None);
        assert_eq!(map_versions(dir.path(), &h, Tool::Dbmate), Ok(vec![1, 5]));
    }
}
