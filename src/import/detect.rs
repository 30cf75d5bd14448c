//! Recognising another tool's layout in a migration directory, for the loader's hint.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Tool, formats};
use crate::source;

/// Recognises a foreign layout in `dir` from its file names and contents: goose annotations
/// or dbmate's `-- migrate:up` in any `.sql` file (such a file would otherwise load as one
/// forward script running its down SQL too), else the layout most of the files follow:
/// Diesel (sub-directories holding `up.sql`), Flyway (`V1__x.sql`), pop (dialect variants,
/// `.fizz`, `.autocommit.`) or golang-migrate (`*.up.sql` / `*.down.sql`; sqlx's reversible
/// layout is the same and imports identically). `None` for crdb-migrate's own layout.
pub fn detect(dir: &Path) -> Option<Tool> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut sql_files = 0usize;
    let mut ours = 0usize;
    let mut counts: BTreeMap<Tool, usize> = BTreeMap::new();
    let mut content_tool: Option<Tool> = None;
    let mut sniffed = 0usize;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        // The entry's type comes with the directory listing: no stat per file, except for a
        // symbolic link, which is followed.
        let is_dir = match entry.file_type() {
            Ok(t) if t.is_symlink() => path.is_dir(),
            Ok(t) => t.is_dir(),
            Err(_) => path.is_dir(),
        };
        if is_dir {
            if path.join("up.sql").is_file() {
                *counts.entry(Tool::Diesel).or_default() += 1;
                sql_files += 1;
            }
            continue;
        }
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".fizz") {
            *counts.entry(Tool::Pop).or_default() += 1;
            sql_files += 1;
            continue;
        }
        if lower.ends_with(".go") && name.starts_with(|c: char| c.is_ascii_digit()) {
            *counts.entry(Tool::Goose).or_default() += 1;
            sql_files += 1;
            continue;
        }
        if !lower.ends_with(".sql") {
            continue;
        }
        sql_files += 1;
        if let Some(t) = formats::name_tool(&name) {
            *counts.entry(t).or_default() += 1;
            continue;
        }
        if source::parse_name(&name).is_ok() {
            ours += 1;
        }
        // Goose and dbmate put their markers in every file: a few files tell.
        if content_tool.is_none() && sniffed < 8 {
            sniffed += 1;
            content_tool = sniff(&path);
        }
    }
    if content_tool.is_some() {
        return content_tool;
    }
    let (tool, n) = counts.into_iter().max_by_key(|&(_, n)| n)?;
    (n > 0 && n * 2 >= sql_files && n > ours).then_some(tool)
}

/// Goose or dbmate markers in the first 64 KiB of a `.sql` file. Only regular files are read
/// (a FIFO or a link to a device must not hang or flood the loader; it reports those itself).
fn sniff(path: &Path) -> Option<Tool> {
    use std::io::Read;
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return None;
    }
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(64 << 10)
        .read_to_end(&mut buf)
        .ok()?;
    let text = String::from_utf8_lossy(&buf);
    for line in text.lines() {
        if formats::goose_annotation(line).is_some_and(|a| a == "up") {
            return Some(Tool::Goose);
        }
        if formats::dbmate_marker(line).is_some_and(|(dir, _)| dir == "up") {
            return Some(Tool::Dbmate);
        }
    }
    None
}

/// The one sentence the loader shows for a foreign layout:
/// "DIR is in golang-migrate's layout, not crdb-migrate's; convert it with
/// `crdb-migrate import --from golang-migrate DIR --into NEWDIR`".
pub fn layout_hint(dir: &Path) -> Option<String> {
    let tool = detect(dir)?;
    let d = dir.display();
    // sqlx and pop (without dialect variants) write golang-migrate's layout: which tool it was
    // matters for `baseline --from`, which reads the mapping the import wrote for one tool.
    let shared = if tool == Tool::GolangMigrate {
        " (sqlx and pop share it: import with `--from sqlx` or `--from pop` instead when that \
         tool manages the database, so `baseline --from` can read its history)"
    } else {
        ""
    };
    Some(format!(
        "{d} is in {tool}'s layout, not crdb-migrate's; convert it with \
         `crdb-migrate import --from {tool} {d} --into NEWDIR`{shared}"
    ))
}
