//! `verify`: the directory checked offline. Problems are an error (exit 20), lint findings
//! warnings. Without `ENVIRONMENT`, every environment sub-directory is checked merged with the
//! common files too, so CI catches what any environment's pod would refuse. Linear in the
//! number of files.

use std::path::Path;

use crate::error::{Error, Result};
use crate::lint::{self, Warning};
use crate::source::{self, Migration};

/// Checks `dir` (with `environment`, or each environment in turn when `None`).
pub fn verify(dir: &Path, environment: Option<&str>) -> Result<(Vec<Migration>, Vec<Warning>)> {
    let set = source::load_all_environments(dir, environment).map_err(Error::Source)?;
    let warnings = lint::lint_all(&set);
    Ok((set, warnings))
}
