//! `create DESCRIPTION`: writes `<UTC YYYYMMDDHHMMSS>_<slug>.sql`, never overwriting; a clash
//! (with any file's version, common or environment) takes the next free second.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::source;

/// Writes a new migration file into `dir` and returns its path.
pub fn create(
    dir: &Path,
    description: &str,
    up: Option<&str>,
    undo: Option<&str>,
) -> Result<PathBuf> {
    let slug = source::slugify(description).ok_or_else(|| Error::Config {
        name: "DESCRIPTION".into(),
        message: format!("{description:?} has no letters or digits to name the file with"),
    })?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let taken = source::taken_versions(dir).map_err(io(dir))?;
    let mut now = time::OffsetDateTime::now_utc();
    let format = time::macros::format_description!("[year][month][day][hour][minute][second]");
    let body = source::render(up.unwrap_or(""), Some(undo.unwrap_or("")));
    for _ in 0..3600 {
        let stamp = now.format(&format).map_err(Error::Clock)?;
        let version: i64 = stamp.parse().unwrap_or(0);
        if !taken.contains(&version) {
            let path = dir.join(source::file_name(version, &slug));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    f.write_all(body.as_bytes()).map_err(io(&path))?;
                    return Ok(path);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(&path)(e)),
            }
        }
        now += time::Duration::SECOND;
    }
    Err(Error::Io {
        path: dir.to_path_buf(),
        source: std::io::Error::other("no free version within the next hour"),
    })
}
