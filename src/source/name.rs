//! Migration file names: `<version>_<description>.sql`, parsed, made from a description, and
//! written.

const EXPECTED_NAME: &str = "expected `<version>_<description>.sql`, e.g. `20240101120000_add_users.sql`: \
     the version is digits (a positive number that fits a signed 64-bit integer), \
     the description lowercase letters, digits and `_`";

/// The hint appended to every bad-name problem.
pub(crate) fn expected_name() -> &'static str {
    EXPECTED_NAME
}

/// Parses a migration file name into its version and slug; the error says what is wrong.
pub fn parse_name(file_name: &str) -> Result<(i64, String), String> {
    let Some(stem) = file_name.strip_suffix(".sql") else {
        return Err(format!("bad file name: {EXPECTED_NAME}"));
    };
    let Some((digits, slug)) = stem.split_once('_') else {
        return Err(format!(
            "bad file name: no `_` between version and description; {EXPECTED_NAME}"
        ));
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "bad file name: the version `{digits}` is not all digits; {EXPECTED_NAME}"
        ));
    }
    let version: i64 = digits.parse().map_err(|_| {
        format!(
            "bad file name: the version `{digits}` does not fit a signed 64-bit integer \
             (at most {}); {EXPECTED_NAME}",
            i64::MAX
        )
    })?;
    if version == 0 {
        return Err(format!(
            "bad file name: the version must be positive, not 0; {EXPECTED_NAME}"
        ));
    }
    if slug.is_empty()
        || !slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!(
            "bad file name: the description `{slug}` must be lowercase letters, digits and `_`; \
             {EXPECTED_NAME}"
        ));
    }
    Ok((version, slug.to_string()))
}

/// Turns a human description into a file-name slug: lowercase, every run of characters other
/// than `[a-z0-9]` becomes one `_`, no `_` at either end. `None` when nothing is left.
pub fn slugify(description: &str) -> Option<String> {
    let mut slug = String::new();
    let mut gap = false;
    for c in description.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            if gap && !slug.is_empty() {
                slug.push('_');
            }
            gap = false;
            slug.push(c);
        } else {
            gap = true;
        }
    }
    (!slug.is_empty()).then_some(slug)
}

/// The file name of a migration: `{version}_{slug}.sql`.
pub fn file_name(version: i64, slug: &str) -> String {
    format!("{version}_{slug}.sql")
}
