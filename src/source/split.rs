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

/// Scans past a `/* */` comment (nested ones included) that starts at `i`.
fn block_comment_end(bytes: &[u8], mut i: usize) -> usize {
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
    i.min(bytes.len())
}

/// The token that starts with the `$` at `i`: a `$1` placeholder, a dollar-quoted string, or
/// a lone `$`; and the offset just past it.
fn dollar(sql: &str, mut i: usize) -> (TokenKind, usize) {
    let bytes = sql.as_bytes();
    if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        (TokenKind::Param, i)
    } else if let Some(len) = dollar_tag_len(bytes, i) {
        let tag = &sql[i..i + len];
        let end = match sql[i + len..].find(tag) {
            Some(n) => i + len + n + len,
            None => bytes.len(),
        };
        (TokenKind::Str, end)
    } else {
        (TokenKind::Punct, i + 1)
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
            i = block_comment_end(bytes, i);
        } else if b == b'\'' {
            kind = TokenKind::Str;
            i = quoted_end(bytes, i, b'\'', false);
        } else if b == b'"' {
            kind = TokenKind::QuotedIdent;
            i = quoted_end(bytes, i, b'"', false);
        } else if b == b'$' {
            (kind, i) = dollar(sql, i);
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

/// Whether a statement is inside the `BEGIN ATOMIC ... END` body of a SQL-standard routine
/// (PostgreSQL 14 and later), where `;` ends the body's statements, not the `CREATE`. The
/// heuristic is psql's own (`src/fe_utils/psqlscan.l`): in a statement that starts
/// `CREATE [OR REPLACE] FUNCTION|PROCEDURE`, outside parentheses, `BEGIN` opens a block,
/// `CASE` inside one opens another (it also ends with `END`), and `END` closes one.
#[derive(Default)]
struct Block {
    /// The first words of the statement, up to four, lower-cased.
    words: Vec<String>,
    parens: usize,
    depth: usize,
}

impl Block {
    fn open(&self) -> bool {
        self.depth > 0
    }

    fn see(&mut self, t: &Token, text: &str) {
        match t.kind {
            TokenKind::Punct if text == "(" => self.parens += 1,
            TokenKind::Punct if text == ")" => self.parens = self.parens.saturating_sub(1),
            TokenKind::Word => {
                let word = text.to_ascii_lowercase();
                if self.words.len() < 4 {
                    self.words.push(word.clone());
                }
                if !self.is_routine() || self.parens > 0 {
                    return;
                }
                match word.as_str() {
                    "begin" => self.depth += 1,
                    "case" if self.depth > 0 => self.depth += 1,
                    "end" => self.depth = self.depth.saturating_sub(1),
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// `CREATE [OR REPLACE] FUNCTION|PROCEDURE`.
    fn is_routine(&self) -> bool {
        let w: Vec<&str> = self.words.iter().map(String::as_str).collect();
        matches!(
            w.as_slice(),
            ["create", "function" | "procedure", ..]
                | ["create", "or", "replace", "function" | "procedure", ..]
        )
    }
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
    let mut block = Block::default();
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
            TokenKind::Punct if sql.as_bytes()[t.start] == b';' && !block.open() => {
                if let Some(s) = start.take() {
                    finish(s, t.start, repeat, &mut out);
                    repeat = false;
                }
                block = Block::default();
            }
            _ => {
                if start.is_none() {
                    start = Some(t.start);
                }
                block.see(&t, &sql[t.start..t.end]);
            }
        }
    }
    if let Some(s) = start {
        finish(s, sql.len(), repeat, &mut out);
    }
    out
}

#[cfg(test)]
#[path = "split_tests.rs"]
mod tests;
