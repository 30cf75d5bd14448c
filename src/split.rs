//! The SQL statement splitter: cuts a script at top-level `;`, aware of quotes, `E''` strings,
//! dollar quotes, quoted identifiers and comments.
//!
//! The same small scanner ([`tokens`]) serves `lint`, which reads keywords and names from a
//! statement without being fooled by strings or comments.
//!
//! What it understands, as PostgreSQL and CockroachDB do:
//! - `'...'` strings, with `''` standing for one quote (backslashes are ordinary characters);
//! - `E'...'` / `e'...'` strings, where `\'` and `\\` (any backslash escape) apply as well;
//! - `"..."` quoted identifiers, with `""` standing for one quote;
//! - dollar quotes `$$...$$` and `$tag$...$tag$` (the tag is identifier characters not starting
//!   with a digit; `$1` is a placeholder, and `a$b$` is one identifier);
//! - `--` comments to the end of the line and `/* ... */` comments, which nest.
//!
//! Anything left unterminated (a string, a comment) runs to the end of the script; the splitter
//! never fails and never panics, whatever the input.

/// One statement of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The statement text without its trailing `;`, trimmed.
    pub text: String,
    /// The 1-based line of the script where the statement starts.
    pub line: usize,
    /// A `-- @REPEAT_UNTIL_ZERO` comment line preceded it.
    pub repeat_until_zero: bool,
}

/// The comment line that marks the next statement as repeated until it affects no rows.
pub const REPEAT_UNTIL_ZERO: &str = "-- @REPEAT_UNTIL_ZERO";

/// What kind of lexical unit a [`Token`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A keyword or unquoted identifier (may contain `$` after the first character).
    Word,
    /// A `"quoted"` identifier, quotes included.
    QuotedIdent,
    /// A string constant of any kind (`'..'`, `E'..'`, `B'..'`, `X'..'`, `$tag$..$tag$`).
    Str,
    /// A number.
    Number,
    /// A `$1` placeholder.
    Param,
    /// A `--` comment, up to (not including) the end of the line.
    LineComment,
    /// A `/* */` comment (nested ones included).
    BlockComment,
    /// Any other single character: `;`, `(`, `)`, `,`, `.`, operators...
    Punct,
}

/// One lexical unit: its kind and its byte range in the scanned text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// The kind.
    pub kind: TokenKind,
    /// Byte offset of the first character.
    pub start: usize,
    /// Byte offset just past the last character.
    pub end: usize,
}

/// Is `b` a byte that may continue an identifier (non-ASCII bytes count as letters)?
fn ident_continue(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Is `b` a byte that may start an identifier or a dollar-quote tag?
fn ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

/// If a non-ASCII whitespace character (say a no-break space) starts at byte `i`, its length.
fn unicode_space_len(sql: &str, i: usize) -> Option<usize> {
    if sql.as_bytes().get(i).is_some_and(|b| *b >= 0x80) {
        let c = sql.get(i..)?.chars().next()?;
        c.is_whitespace().then(|| c.len_utf8())
    } else {
        None
    }
}

/// Scans past a quoted run that started at `open` (the opening quote `q`), where a doubled
/// quote stands for one, and (when `backslash`) a backslash escapes the next byte.
fn quoted_end(bytes: &[u8], open: usize, q: u8, backslash: bool) -> usize {
    let mut i = open + 1;
    while i < bytes.len() {
        let b = bytes[i];
        if backslash && b == b'\\' {
            i += 2;
        } else if b == q {
            if bytes.get(i + 1) == Some(&q) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// If a dollar-quote opening delimiter starts at `i`, its length (`$$` is 2, `$ab$` is 4).
fn dollar_tag_len(bytes: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if j < bytes.len() && bytes[j] == b'$' {
        return Some(2);
    }
    if j >= bytes.len() || !ident_start(bytes[j]) {
        return None;
    }
    while j < bytes.len() && ident_continue(bytes[j]) && bytes[j] != b'$' {
        j += 1;
    }
    if j < bytes.len() && bytes[j] == b'$' {
        Some(j + 1 - i)
    } else {
        None
    }
}

/// Cuts `sql` into tokens; whitespace is skipped. Every byte range lies on character
/// boundaries. Unterminated strings and comments run to the end of the text.
pub fn tokens(sql: &str) -> Vec<Token> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let start = i;
        let kind;
        if b.is_ascii_whitespace() {
            i += 1;
            continue;
        } else if let Some(n) = unicode_space_len(sql, i) {
            i += n;
            continue;
        } else if b == b'-' && bytes.get(i + 1) == Some(&b'-') {
            kind = TokenKind::LineComment;
            i = match sql[i..].find('\n') {
                Some(n) => i + n,
                None => bytes.len(),
            };
        } else if b == b'/' && bytes.get(i + 1) == Some(&b'*') {
            kind = TokenKind::BlockComment;
            let mut depth = 0usize;
            while i < bytes.len() {
                if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            i = i.min(bytes.len());
        } else if b == b'\'' {
            kind = TokenKind::Str;
            i = quoted_end(bytes, i, b'\'', false);
        } else if b == b'"' {
            kind = TokenKind::QuotedIdent;
            i = quoted_end(bytes, i, b'"', false);
        } else if b == b'$' {
            if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
                kind = TokenKind::Param;
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
            } else if let Some(len) = dollar_tag_len(bytes, i) {
                kind = TokenKind::Str;
                let tag = &sql[i..i + len];
                i = match sql[i + len..].find(tag) {
                    Some(n) => i + len + n + len,
                    None => bytes.len(),
                };
            } else {
                kind = TokenKind::Punct;
                i += 1;
            }
        } else if ident_start(b) {
            while i < bytes.len() && ident_continue(bytes[i]) && unicode_space_len(sql, i).is_none()
            {
                i += 1;
            }
            let word = &bytes[start..i];
            if bytes.get(i) == Some(&b'\'') {
                // A prefixed string: E'..' takes backslash escapes; B'..', X'..', N'..' and
                // any other word directly followed by a quote are plain strings.
                kind = TokenKind::Str;
                let backslash = word.eq_ignore_ascii_case(b"e");
                if backslash || matches!(word, b"b" | b"B" | b"x" | b"X" | b"n" | b"N") {
                    i = quoted_end(bytes, i, b'\'', backslash);
                } else {
                    // An ordinary word followed by a string: emit the word alone.
                    out.push(Token {
                        kind: TokenKind::Word,
                        start,
                        end: i,
                    });
                    continue;
                }
            } else {
                kind = TokenKind::Word;
            }
        } else if b.is_ascii_digit() {
            kind = TokenKind::Number;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            if bytes.get(i) == Some(&b'.') {
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
            }
        } else {
            kind = TokenKind::Punct;
            i += 1;
        }
        out.push(Token {
            kind,
            start,
            end: i,
        });
    }
    out
}

/// Is the line holding byte `pos` of `sql` blank before `pos`?
fn alone_on_line(sql: &str, pos: usize) -> bool {
    let line_start = sql[..pos].rfind('\n').map_or(0, |n| n + 1);
    sql[line_start..pos].trim().is_empty()
}

/// Splits a script into its statements, leaving out empty ones.
///
/// A statement's `line` is the line of its first character (comments before it are not part
/// of it). `repeat_until_zero` is set when a comment line holding exactly
/// `-- @REPEAT_UNTIL_ZERO` (surrounding whitespace aside) stands between the end of the
/// previous statement and the first character of this one.
pub fn split(sql: &str) -> Vec<Statement> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut repeat = false;
    // Running line count: `line` is the line of byte `counted`.
    let mut counted = 0;
    let mut line = 1;
    let mut finish = |start: usize, end: usize, repeat: bool, out: &mut Vec<Statement>| {
        line += sql[counted..start].matches('\n').count();
        counted = start;
        let text = sql[start..end].trim();
        if !text.is_empty() {
            out.push(Statement {
                text: text.to_string(),
                line,
                repeat_until_zero: repeat,
            });
        }
    };
    for t in tokens(sql) {
        match t.kind {
            TokenKind::LineComment | TokenKind::BlockComment if start.is_none() => {
                if t.kind == TokenKind::LineComment
                    && sql[t.start..t.end].trim() == REPEAT_UNTIL_ZERO
                    && alone_on_line(sql, t.start)
                {
                    repeat = true;
                }
            }
            TokenKind::Punct if sql.as_bytes()[t.start] == b';' => {
                if let Some(s) = start.take() {
                    finish(s, t.start, repeat, &mut out);
                    repeat = false;
                }
            }
            _ => {
                if start.is_none() {
                    start = Some(t.start);
                }
            }
        }
    }
    if let Some(s) = start {
        finish(s, sql.len(), repeat, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn texts(sql: &str) -> Vec<String> {
        split(sql).into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn plain_statements() {
        assert_eq!(texts("SELECT 1; SELECT 2;"), ["SELECT 1", "SELECT 2"]);
        assert_eq!(texts("SELECT 1;\nSELECT 2"), ["SELECT 1", "SELECT 2"]);
        assert!(texts("").is_empty());
        assert!(texts(" ;; \n ; ").is_empty());
    }

    #[test]
    fn single_quotes_with_doubled_quote() {
        assert_eq!(
            texts("INSERT INTO t VALUES ('a;''b;'); SELECT 2"),
            ["INSERT INTO t VALUES ('a;''b;')", "SELECT 2"]
        );
        // A backslash is ordinary in a standard string.
        assert_eq!(
            texts(r"SELECT 'a\'; SELECT 2"),
            [r"SELECT 'a\'", "SELECT 2"]
        );
    }

    #[test]
    fn escape_strings() {
        assert_eq!(
            texts(r"SELECT E'a\';b'; SELECT e'\\'; SELECT 3"),
            [r"SELECT E'a\';b'", r"SELECT e'\\'", "SELECT 3"]
        );
        // `e` inside a longer word is not a prefix.
        assert_eq!(texts(r"SELECT some'\'; x"), [r"SELECT some'\'", "x"]);
    }

    #[test]
    fn quoted_identifiers() {
        assert_eq!(
            texts(r#"CREATE TABLE "a;""b" (x INT); SELECT 1"#),
            [r#"CREATE TABLE "a;""b" (x INT)"#, "SELECT 1"]
        );
    }

    #[test]
    fn dollar_quotes() {
        let sql = "CREATE FUNCTION f() RETURNS INT AS $$ SELECT 1; $$ LANGUAGE SQL;\n\
                   DO $body$ BEGIN PERFORM 1; $x$ ; $x$ END $body$; SELECT $1; SELECT a$b$c;";
        assert_eq!(
            texts(sql),
            [
                "CREATE FUNCTION f() RETURNS INT AS $$ SELECT 1; $$ LANGUAGE SQL",
                "DO $body$ BEGIN PERFORM 1; $x$ ; $x$ END $body$",
                "SELECT $1",
                "SELECT a$b$c",
            ]
        );
        // `$1$` is not a tag (starts with a digit).
        assert_eq!(texts("SELECT $1$; SELECT 2"), ["SELECT $1$", "SELECT 2"]);
    }

    #[test]
    fn comments() {
        let sql =
            "-- lead; comment\nSELECT 1 -- trailing;\n; /* a; /* nested; */ still; */ SELECT 2;";
        assert_eq!(texts(sql), ["SELECT 1 -- trailing;", "SELECT 2"]);
        assert!(texts("-- only a comment;\n/* and; another */").is_empty());
    }

    #[test]
    fn lines_are_those_of_the_first_character() {
        let s = split("\n\n-- c\n  SELECT 1;\n/* x\n */ SELECT\n2;SELECT 3");
        let lines: Vec<usize> = s.iter().map(|s| s.line).collect();
        assert_eq!(lines, [4, 6, 7]);
    }

    #[test]
    fn repeat_until_zero_marker() {
        let sql = "SELECT 1;\n  -- @REPEAT_UNTIL_ZERO  \nDELETE FROM t LIMIT 10;\nSELECT 3;\n\
                   SELECT 4; -- @REPEAT_UNTIL_ZERO\nSELECT 5;\n-- @REPEAT_UNTIL_ZERO extra\nSELECT 6;\n\
                   SELECT 7\n-- @REPEAT_UNTIL_ZERO\n;SELECT 8";
        let flags: Vec<bool> = split(sql).iter().map(|s| s.repeat_until_zero).collect();
        assert_eq!(
            flags,
            [false, true, false, false, false, false, false, false]
        );
    }

    #[test]
    fn unterminated_things_run_to_the_end() {
        assert_eq!(texts("SELECT 'abc; SELECT 2"), ["SELECT 'abc; SELECT 2"]);
        assert_eq!(texts("SELECT $$ ; "), ["SELECT $$ ;"]);
        assert_eq!(texts("SELECT 1 /* ; "), ["SELECT 1 /* ;"]);
        assert_eq!(texts("SELECT E'\\"), ["SELECT E'\\"]);
    }

    #[test]
    fn crlf_and_unicode() {
        assert_eq!(
            texts("SELECT 'é;ü';\r\nSELECT \"ß\";\r\n"),
            ["SELECT 'é;ü'", "SELECT \"ß\""]
        );
    }

    /// A piece of a generated statement: never a top-level `;`, never trailing whitespace.
    fn piece() -> impl Strategy<Value = String> {
        let word = "[a-z_][a-z0-9_]{0,6}";
        let text = "[a-z ;'\"$\\\\\n]{0,8}";
        prop_oneof![
            proptest::string::string_regex(word).expect("valid regex"),
            proptest::string::string_regex("[0-9]{1,4}").expect("valid regex"),
            proptest::string::string_regex(text)
                .expect("valid regex")
                .prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
            proptest::string::string_regex(text)
                .expect("valid regex")
                .prop_map(|s| format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))),
            proptest::string::string_regex(text)
                .expect("valid regex")
                .prop_map(|s| format!("\"{}\"", s.replace('"', "\"\""))),
            proptest::string::string_regex(text)
                .expect("valid regex")
                .prop_filter("closes at the end", |s| format!("{s}$$").find("$$")
                    == Some(s.len()))
                .prop_map(|s| format!("$${s}$$")),
            proptest::string::string_regex(text)
                .expect("valid regex")
                .prop_filter("closes at the end", |s| format!("{s}$fn$").find("$fn$")
                    == Some(s.len()))
                .prop_map(|s| format!("$fn${s}$fn$")),
            proptest::string::string_regex("[a-z ;'\"$]{0,8}")
                .expect("valid regex")
                .prop_map(|s| format!("-- {s}\n")),
            proptest::string::string_regex("[a-z ;'\"$\n]{0,8}")
                .expect("valid regex")
                .prop_filter("no comment delimiters", |s| !s.contains('/')
                    && !s.contains('*'))
                .prop_map(|s| format!("/* {s} /* {s} */ */")),
            Just("$1".to_string()),
        ]
    }

    fn statement() -> impl Strategy<Value = String> {
        (
            proptest::string::string_regex("[A-Z]{1,8}").expect("valid regex"),
            proptest::collection::vec(piece(), 0..6),
            proptest::string::string_regex("[a-z0-9]{1,4}").expect("valid regex"),
        )
            .prop_map(|(head, pieces, tail)| {
                let mut s = head;
                for p in pieces {
                    s.push(' ');
                    s.push_str(&p);
                }
                s.push(' ');
                s.push_str(&tail);
                s
            })
    }

    proptest! {
        #[test]
        fn joined_statements_split_back(stmts in proptest::collection::vec(statement(), 0..6)) {
            let script = stmts.join(";\n");
            prop_assert_eq!(texts(&script), stmts.clone());
            let with_semicolon = format!("{};", stmts.join(";\n"));
            prop_assert_eq!(texts(&with_semicolon), stmts);
        }

        #[test]
        fn never_panics_and_texts_are_whole(sql in "(?s).{0,80}") {
            for s in split(&sql) {
                prop_assert!(!s.text.is_empty());
                prop_assert!(s.line >= 1);
                // Re-splitting a statement gives it back whole: no top-level `;` inside.
                prop_assert_eq!(texts(&s.text), vec![s.text.clone()]);
            }
        }

        #[test]
        fn never_panics_on_sql_like_noise(sql in "[a-zE ;'\"$\\\\/*\n-]{0,60}") {
            for s in split(&sql) {
                prop_assert_eq!(texts(&s.text), vec![s.text.clone()]);
            }
        }
    }
}
