//! The mapping file ([`super::MAPPING_FILE`]), written by an import and read back: which tool,
//! and which original version became which version here.

use std::collections::BTreeSet;
use std::path::Path;

use super::{Foreign, MAPPING_FILE, Tool, canonical_version};

/// What a mapping file says.
pub(crate) struct Mapping {
    /// The tool imported from.
    pub tool: Tool,
    /// (canonical original version, our version), in file order.
    pub rows: Vec<(String, i64)>,
}

/// Reads `dir`'s mapping file; `None` when there is none.
pub(crate) fn read_mapping(dir: &Path) -> Result<Option<Mapping>, String> {
    let path = dir.join(MAPPING_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
    };
    let mut tool = None;
    let mut rows = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let bad = |what: &str| format!("{}:{}: {what}", path.display(), i + 1);
        match fields.as_slice() {
            ["tool", name] => tool = Some(name.parse::<Tool>().map_err(|e| bad(&e))?),
            ["original_version", "version", "from"] => {}
            [original, version, _from] => {
                let t = tool.ok_or_else(|| bad("a row before the `tool` line"))?;
                let original = canonical_version(t, original)
                    .ok_or_else(|| bad(&format!("`{original}` is not a {t} version")))?;
                let version: i64 = version
                    .parse()
                    .map_err(|_| bad(&format!("`{version}` is not a version")))?;
                if !seen.insert(original.clone()) {
                    return Err(bad(&format!("version {original} is listed twice")));
                }
                rows.push((original, version));
            }
            _ => return Err(bad("expected `original_version<TAB>version<TAB>from`")),
        }
    }
    let tool = tool.ok_or_else(|| format!("{}: no `tool` line", path.display()))?;
    Ok(Some(Mapping { tool, rows }))
}

/// The mapping file's text for `rows` (each migration with the version written for it, in
/// version order); source paths are written relative to `src`.
pub(super) fn mapping_text(tool: Tool, src: &Path, rows: &[(&Foreign, i64)]) -> String {
    let mut mapping = format!(
        "# crdb-migrate import mapping, format 1\ntool\t{tool}\noriginal_version\tversion\tfrom\n"
    );
    for (f, version) in rows {
        let from: Vec<String> = f
            .from
            .iter()
            .map(|p| {
                p.strip_prefix(src)
                    .unwrap_or(p)
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        mapping.push_str(&format!(
            "{}\t{}\t{}\n",
            f.original,
            version,
            from.join(" + ")
        ));
    }
    mapping
}
