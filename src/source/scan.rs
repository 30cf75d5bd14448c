//! The directory walk: which files of `MIGRATIONS_DIR` (and its environment sub-directories)
//! are migrations, reading them, and the versions used twice. Everything here is linear in
//! the number of files (the sorts aside).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::name::expected_name;
use super::{MAX_FILE_BYTES, Migration, Problem, parse, parse_name, problem};

/// A problem when `dir` is not a readable directory.
pub(super) fn check_dir(dir: &Path) -> Result<(), Problem> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(problem(
            dir,
            None,
            "is not a directory; set MIGRATIONS_DIR to the directory holding the .sql files",
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(problem(
            dir,
            None,
            "the migrations directory does not exist; set MIGRATIONS_DIR to the directory \
             holding the .sql files",
        )),
        Err(e) => Err(problem(
            dir,
            None,
            format!("cannot read the migrations directory: {e}"),
        )),
    }
}

/// The `.sql` files of `dir` (not recursive); problems for entries that cannot be looked at.
pub(super) fn scan(dir: &Path, files: &mut Vec<PathBuf>, problems: &mut Vec<Problem>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(problem(
                dir,
                None,
                format!("cannot read the directory: {e}"),
            ));
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                problems.push(problem(
                    dir,
                    None,
                    format!("cannot read the directory: {e}"),
                ));
                continue;
            }
        };
        let path = entry.path();
        let name = entry.file_name();
        let lossy = name.to_string_lossy();
        if lossy.starts_with('.') || !lossy.to_ascii_lowercase().ends_with(".sql") {
            continue;
        }
        // The entry's type comes with the directory listing; only a symbolic link is followed
        // with a stat. The size is checked on the opened file (`read_capped`).
        let kind = match entry.file_type() {
            Ok(t) if t.is_symlink() => std::fs::metadata(&path).map(|m| m.file_type()),
            other => other,
        };
        match kind {
            Ok(t) if t.is_dir() => continue,
            // A FIFO would block the read forever and a device never end: regular files only.
            Ok(t) if !t.is_file() => {
                problems.push(problem(
                    &path,
                    None,
                    "is not a regular file (a FIFO, socket or device?); migrations must be files",
                ));
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                problems.push(problem(&path, None, format!("cannot read the file: {e}")));
                continue;
            }
        }
        if name.to_str().is_none() {
            problems.push(problem(
                &path,
                None,
                format!("the file name is not valid UTF-8; {}", expected_name()),
            ));
            continue;
        }
        files.push(path);
    }
}

/// The non-hidden sub-directories of `dir`, sorted by name (the environments).
pub(super) fn subdirectories(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut subs: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    subs.sort();
    subs
}

/// Reads and parses `files`: the migrations that load, and every problem of the others.
pub(super) fn read(
    files: &[PathBuf],
    migrations: &mut Vec<Migration>,
    problems: &mut Vec<Problem>,
) {
    migrations.reserve(files.len());
    for path in files {
        let bytes = match read_file(path) {
            Ok(bytes) => bytes,
            Err(message) => {
                problems.push(problem(path, None, message));
                continue;
            }
        };
        match parse(path, &bytes) {
            Ok(m) => migrations.push(m),
            Err(p) => problems.extend(p),
        }
    }
}

/// The whole file, or what is wrong with it (unreadable, or over [`MAX_FILE_BYTES`]), as a
/// problem's message. The importer reads other tools' files through it too.
pub fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    match read_capped(path) {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(len)) => Err(format!(
            "is {len} bytes, more than the {} MiB a migration file may have; split it",
            MAX_FILE_BYTES >> 20
        )),
        Err(e) => Err(format!("cannot read the file: {e}")),
    }
}

/// The whole file, or its length when it is over [`MAX_FILE_BYTES`]: one open, one stat of the
/// open file, the reads.
fn read_capped(path: &Path) -> std::io::Result<Result<Vec<u8>, u64>> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > MAX_FILE_BYTES {
        return Ok(Err(len));
    }
    let mut bytes = Vec::with_capacity(len as usize + 1);
    // Never more than the cap, whatever the file grew to since the stat.
    (&mut file)
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Ok(Err(bytes.len() as u64));
    }
    Ok(Ok(bytes))
}

/// The version in `path`'s file name, when the name parses.
fn version_of(path: &Path) -> Option<i64> {
    let name = path.file_name()?.to_string_lossy();
    parse_name(&name).ok().map(|(version, _)| version)
}

/// The files of `files` whose names parse, by version.
pub(super) fn by_version(files: &[PathBuf]) -> BTreeMap<i64, Vec<&Path>> {
    let mut out: BTreeMap<i64, Vec<&Path>> = BTreeMap::new();
    for path in files {
        if let Some(version) = version_of(path) {
            out.entry(version).or_default().push(path);
        }
    }
    out
}

/// [`duplicates`] for every version of `files`, as [`by_version`] would find them but with
/// one list of (version, path) pairs instead of a map entry and a list per version (a run
/// checks this while holding the whole set).
pub(super) fn all_duplicates(files: &[PathBuf], problems: &mut Vec<Problem>) {
    let mut named: Vec<(i64, &Path)> = files
        .iter()
        .filter_map(|p| Some((version_of(p)?, p.as_path())))
        .collect();
    named.sort_unstable();
    for same in named.chunk_by(|a, b| a.0 == b.0).filter(|s| s.len() > 1) {
        let mut paths: Vec<&Path> = same.iter().map(|&(_, p)| p).collect();
        duplicates(same[0].0, &mut paths, problems);
    }
}

/// A problem for every file whose version an earlier one (in path order) already uses.
pub(super) fn duplicates(version: i64, paths: &mut [&Path], problems: &mut Vec<Problem>) {
    paths.sort();
    let Some((first, rest)) = paths.split_first() else {
        return;
    };
    for other in rest {
        problems.push(problem(
            other,
            None,
            format!(
                "version {version} is used twice: by {} and by {}; versions must be \
                 unique (across the common and the environment directory), renumber one",
                first.display(),
                other.display()
            ),
        ));
    }
}

/// The versions of every migration-named file in `dir` and its non-hidden sub-directories
/// (what `create` must not reuse). Bodies are not read.
pub fn taken_versions(dir: &Path) -> std::io::Result<BTreeSet<i64>> {
    let mut taken = BTreeSet::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d)?.filter_map(|e| e.ok()) {
            let name = e.file_name().to_string_lossy().into_owned();
            if d == dir && !name.starts_with('.') && e.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(e.path());
            } else if let Ok((v, _)) = parse_name(&name) {
                taken.insert(v);
            }
        }
    }
    Ok(taken)
}
