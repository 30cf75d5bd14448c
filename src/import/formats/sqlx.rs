//! sqlx's layout: `<version>_<name>.up.sql` / `.down.sql` pairs or plain `<version>_<name>.sql`
//! up-only files, `-- no-transaction` on the first line.

use std::path::{Path, PathBuf};

use super::file_name;
use super::pairs::{Candidate, Direction};
use crate::import::{ImportProblem, numeric_key, problem, strip_zeros};

pub(super) fn candidates(files: &[PathBuf], problems: &mut Vec<ImportProblem>) -> Vec<Candidate> {
    let mut out = Vec::new();
    for path in files {
        let name = file_name(path);
        // sqlx: `<version>_<description>.sql`, `.up.sql`, `.down.sql`; others are skipped.
        let Some((version, rest)) = name.split_once('_') else {
            continue;
        };
        if !rest.ends_with(".sql") {
            continue;
        }
        if version.is_empty()
            || !version.bytes().all(|b| b.is_ascii_digit())
            || version.parse::<i64>().is_err()
        {
            problems.push(problem(
                path,
                None,
                format!(
                    "the version `{version}` is not a number sqlx accepts (a signed 64-bit integer)"
                ),
            ));
            continue;
        }
        let (description, direction) = if let Some(d) = rest.strip_suffix(".up.sql") {
            (d, Direction::Up)
        } else if let Some(d) = rest.strip_suffix(".down.sql") {
            (d, Direction::Down)
        } else {
            (&rest[..rest.len() - 4], Direction::Up)
        };
        let no_transaction = starts_with(path, b"-- no-transaction");
        out.push(Candidate {
            original: strip_zeros(version),
            order: numeric_key(version),
            name: description.to_string(),
            direction,
            path: path.clone(),
            no_transaction,
            extra: None,
        });
    }
    out
}

/// Does the file start with `prefix`? Only that much is read here (the whole file is read, and
/// checked against the loader's cap, with its sections).
fn starts_with(path: &Path, prefix: &[u8]) -> bool {
    use std::io::Read;
    let mut head = Vec::with_capacity(prefix.len());
    std::fs::File::open(path)
        .and_then(|f| f.take(prefix.len() as u64).read_to_end(&mut head))
        .is_ok_and(|_| head == prefix)
}
