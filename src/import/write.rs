//! The import itself: every migration rendered and checked with the loader's parser, then
//! written with the mapping file, all or nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::convert::{render, unwrap_transaction};
use super::mapping::mapping_text;
use super::{Foreign, ImportProblem, Imported, MAPPING_FILE, Tool, formats, problem};
use crate::source;

/// Converts the migration directory `src`, laid out for `tool`, into crdb-migrate files in
/// `into` (created when missing), plus the [`MAPPING_FILE`]. `dialect` picks pop's variant
/// (`postgres` or `cockroach`) and is refused for the other tools.
///
/// Returns one [`Imported`] per file written, in version order; or every problem found, with
/// nothing written.
pub fn import(
    tool: Tool,
    src: &Path,
    into: &Path,
    dialect: Option<&str>,
) -> Result<Vec<Imported>, Vec<ImportProblem>> {
    check_directories(src, into)?;
    let (mut foreign, mut problems) = formats::read(tool, src, dialect)?;
    foreign.sort_by(|a, b| a.order.cmp(&b.order).then(a.from.cmp(&b.from)));
    duplicate_versions(tool, &foreign, &mut problems);
    for f in foreign.iter_mut().filter(|f| !f.no_transaction) {
        unwrap_transaction(&mut f.up);
        if let Some(down) = &mut f.down {
            unwrap_transaction(down);
        }
    }
    let versions = assign_versions(&foreign);

    // Render and check every file before writing anything.
    let planned: Vec<Planned<'_>> = foreign
        .iter()
        .zip(&versions)
        .map(|(f, &version)| plan_one(f, version, into, &mut problems))
        .collect();
    let mapping_path = into.join(MAPPING_FILE);
    if std::fs::symlink_metadata(&mapping_path).is_ok() {
        problems.push(exists(&mapping_path));
    }
    if !problems.is_empty() {
        problems.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
        problems.dedup();
        return Err(problems);
    }
    if let Err(e) = std::fs::create_dir_all(into) {
        return Err(vec![problem(
            into,
            None,
            format!("cannot create the directory: {e}"),
        )]);
    }
    let rows: Vec<(&Foreign, i64)> = planned.iter().map(|p| (p.foreign, p.version)).collect();
    let mapping = mapping_text(tool, src, &rows);
    let files = planned
        .iter()
        .map(|p| (p.to.clone(), p.body.as_str()))
        .chain(std::iter::once((mapping_path, mapping.as_str())));
    write_all(files)?;
    Ok(planned
        .into_iter()
        .map(|p| Imported {
            from: p
                .foreign
                .from
                .iter()
                .map(|f| f.strip_prefix(src).unwrap_or(f).to_path_buf())
                .collect(),
            to: p.to,
            version: p.version,
            original_version: p.foreign.original.clone(),
        })
        .collect())
}

/// One file to write: where, what, for which migration and version.
struct Planned<'a> {
    to: PathBuf,
    body: String,
    foreign: &'a Foreign,
    version: i64,
}

/// `src` must be a readable directory, and `into` must not be the same directory.
fn check_directories(src: &Path, into: &Path) -> Result<(), Vec<ImportProblem>> {
    match std::fs::metadata(src) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(vec![problem(src, None, "is not a directory")]),
        Err(e) => {
            return Err(vec![problem(
                src,
                None,
                format!("cannot read the source directory: {e}"),
            )]);
        }
    }
    if let (Ok(a), Ok(b)) = (src.canonicalize(), into.canonicalize())
        && a == b
    {
        return Err(vec![problem(
            into,
            None,
            "is the source directory; import into a new directory (`--into NEWDIR`)",
        )]);
    }
    Ok(())
}

/// Two migrations for one version (`foreign` sorted in the tool's order): the later is a problem.
fn duplicate_versions(tool: Tool, foreign: &[Foreign], problems: &mut Vec<ImportProblem>) {
    let mut seen: BTreeMap<&str, &Foreign> = BTreeMap::new();
    for f in foreign {
        if let Some(first) = seen.insert(&f.original, f) {
            problems.push(problem(
                &f.from[0],
                None,
                format!(
                    "version {} is also used by {}; {tool} would not run both, remove one",
                    f.original,
                    first.from[0].display()
                ),
            ));
        }
    }
}

/// Renders `f` as `version` in `into` and checks it with the loader's parser; what would not
/// load is reported at the source line it came from, as is a target file that already exists.
fn plan_one<'a>(
    f: &'a Foreign,
    version: i64,
    into: &Path,
    problems: &mut Vec<ImportProblem>,
) -> Planned<'a> {
    let slug = source::slugify(&f.name).unwrap_or_else(|| "imported".to_string());
    let to = into.join(source::file_name(version, &slug));
    let (body, origins) = render(f);
    if let Err(found) = source::parse(&to, body.as_bytes()) {
        for p in found {
            // An empty forward section is a valid no-op forward (a down-only migration).
            if p.message.starts_with("has no forward SQL statement") {
                continue;
            }
            let origin = p.line.and_then(|l| origins.get(l - 1).cloned().flatten());
            problems.push(match origin {
                Some((path, line)) => problem(&path, Some(line), p.message),
                None => problem(
                    &f.from[0],
                    None,
                    format!("the converted file would not load: {}", p),
                ),
            });
        }
    }
    if std::fs::symlink_metadata(&to).is_ok() {
        problems.push(exists(&to));
    }
    Planned {
        to,
        body,
        foreign: f,
        version,
    }
}

fn exists(path: &Path) -> ImportProblem {
    problem(
        path,
        None,
        "already exists; import never overwrites, choose an empty `--into` directory",
    )
}

/// Writes every file new; on a failure removes the ones written before it.
fn write_all<'a>(
    files: impl Iterator<Item = (PathBuf, &'a str)>,
) -> Result<(), Vec<ImportProblem>> {
    let mut written: Vec<PathBuf> = Vec::new();
    for (to, body) in files {
        if let Err(e) = write_new(&to, body) {
            for w in &written {
                let _ = std::fs::remove_file(w);
            }
            return Err(vec![problem(
                &to,
                None,
                format!("cannot write the file: {e} (nothing was left written)"),
            )]);
        }
        written.push(to);
    }
    Ok(())
}

fn write_new(path: &Path, body: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(body.as_bytes())
}

/// The versions to write, parallel to `foreign` (sorted in the tool's order): the originals
/// when they fit (positive INT8, distinct, numeric order = tool order), else 1..n.
pub(super) fn assign_versions(foreign: &[Foreign]) -> Vec<i64> {
    let parsed: Option<Vec<i64>> = foreign
        .iter()
        .map(|f| {
            (f.original.bytes().all(|b| b.is_ascii_digit()))
                .then(|| f.original.parse::<i64>().ok())
                .flatten()
                .filter(|&v| v > 0)
        })
        .collect();
    if let Some(v) = parsed
        && v.windows(2).all(|w| w[0] < w[1])
    {
        return v;
    }
    (1..=foreign.len() as i64).collect()
}
