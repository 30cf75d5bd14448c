//! Keeping the password out of URL parse errors: every piece of the URL that may be part of
//! the password is replaced by `***` before the error leaves the parser.

use super::ConnectError;

/// Everything that might be part of the password, longest first: the text between the first
/// ':' of the user info and the last '@' of the URL, whole and cut at every character where a
/// parser may have split it. A URL that does not parse may have been cut inside the password.
fn password_fragments(url: &str) -> Vec<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let Some(at) = rest.rfind('@') else {
        return Vec::new();
    };
    let Some((_, password)) = rest[..at].split_once(':') else {
        return Vec::new();
    };
    let mut frags: Vec<String> = password
        .split(|c: char| "/?&=@:#,[]".contains(c))
        .filter(|f| f.chars().count() >= 3)
        .map(str::to_string)
        .collect();
    frags.push(password.to_string());
    frags.retain(|f| !f.is_empty());
    frags.sort_by_key(|f| std::cmp::Reverse(f.len()));
    frags
}

/// Removes anything that may be a piece of the password from a parse error.
pub(super) fn scrub_parse_error(url: &str, e: ConnectError) -> ConnectError {
    let frags = password_fragments(url);
    let scrub = |mut text: String| {
        for f in &frags {
            text = text.replace(f.as_str(), "***");
        }
        text
    };
    match e {
        ConnectError::Url { param, message } => ConnectError::Url {
            param: scrub(param),
            message: scrub(message),
        },
        other => other,
    }
}
