//! Lint's view of a statement: its tokens (comments dropped, keywords upper-cased, names
//! lower-cased unless quoted) and a cursor to read them with.

use crate::source::split::{TokenKind, tokens};

/// One token, as lint reads it.
#[derive(Debug, Clone)]
pub(super) enum Tok {
    /// A keyword or name: upper-cased for keyword matching, lower-cased as a name.
    Word { upper: String, name: String },
    /// A quoted identifier: the name, case kept.
    Quoted(String),
    /// A single punctuation character.
    Punct(char),
    /// A number, as written.
    Number(String),
    /// Strings, placeholders.
    Other,
}

impl Tok {
    pub(super) fn is_kw(&self, kw: &str) -> bool {
        matches!(self, Tok::Word { upper, .. } if upper == kw)
    }
    pub(super) fn name(&self) -> Option<&str> {
        match self {
            Tok::Word { name, .. } => Some(name),
            Tok::Quoted(name) => Some(name),
            _ => None,
        }
    }
    pub(super) fn is_punct(&self, c: char) -> bool {
        matches!(self, Tok::Punct(p) if *p == c)
    }
}

pub(super) fn lex(text: &str) -> Vec<Tok> {
    tokens(text)
        .into_iter()
        .filter_map(|t| {
            let raw = &text[t.start..t.end];
            match t.kind {
                TokenKind::LineComment | TokenKind::BlockComment => None,
                TokenKind::Word => Some(Tok::Word {
                    upper: raw.to_ascii_uppercase(),
                    name: raw.to_lowercase(),
                }),
                TokenKind::QuotedIdent => {
                    let inner = raw.strip_prefix('"').unwrap_or(raw);
                    let inner = inner.strip_suffix('"').unwrap_or(inner);
                    Some(Tok::Quoted(inner.replace("\"\"", "\"")))
                }
                TokenKind::Punct => raw.chars().next().map(Tok::Punct),
                TokenKind::Number => Some(Tok::Number(raw.to_string())),
                _ => Some(Tok::Other),
            }
        })
        .collect()
}

/// A cursor over a statement's tokens.
pub(super) struct Cur<'a> {
    pub(super) toks: &'a [Tok],
    pub(super) i: usize,
}

impl Cur<'_> {
    pub(super) fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i)
    }
    /// Consumes the keyword sequence `kws` if it is next.
    pub(super) fn eat(&mut self, kws: &[&str]) -> bool {
        let ok = kws
            .iter()
            .enumerate()
            .all(|(k, kw)| self.toks.get(self.i + k).is_some_and(|t| t.is_kw(kw)));
        if ok {
            self.i += kws.len();
        }
        ok
    }
    /// Consumes any of the single keywords in `kws`, repeatedly.
    pub(super) fn skip_any(&mut self, kws: &[&str]) {
        while self
            .peek()
            .is_some_and(|t| kws.iter().any(|kw| t.is_kw(kw)))
        {
            self.i += 1;
        }
    }
    /// Reads a possibly qualified name (`a.b.c`, CockroachDB's `table@index`): returns the
    /// last component, and the part before `@` when there is one.
    pub(super) fn name(&mut self) -> Option<(String, Option<String>)> {
        let mut last = self.peek()?.name()?.to_string();
        self.i += 1;
        let mut table = None;
        loop {
            let sep = match self.peek() {
                Some(t) if t.is_punct('.') => '.',
                Some(t) if t.is_punct('@') => '@',
                _ => break,
            };
            let Some(next) = self.toks.get(self.i + 1).and_then(Tok::name) else {
                break;
            };
            if sep == '@' {
                table = Some(last);
            }
            last = next.to_string();
            self.i += 2;
        }
        Some((last, table))
    }
}

impl Tok {
    /// Is this a keyword among `kws`?
    pub(super) fn is_any(&self, kws: &[&str]) -> bool {
        kws.iter().any(|k| self.is_kw(k))
    }
}

impl Cur<'_> {
    /// A cursor over `toks`, at the start.
    pub(super) fn new(toks: &[Tok]) -> Cur<'_> {
        Cur { toks, i: 0 }
    }
    /// The tokens not read yet.
    pub(super) fn rest(&self) -> &[Tok] {
        self.toks.get(self.i..).unwrap_or_default()
    }
    /// Reads a name (not qualified), if one is next.
    pub(super) fn word(&mut self) -> Option<String> {
        let n = self.peek()?.name()?.to_string();
        self.i += 1;
        Some(n)
    }
}

/// Splits `toks` at top-level commas (outside parentheses).
pub(super) fn split_commas(toks: &[Tok]) -> Vec<&[Tok]> {
    let mut depth = 0usize;
    let mut start = 0;
    let mut out = Vec::new();
    for (k, t) in toks.iter().enumerate() {
        if t.is_punct('(') {
            depth += 1;
        } else if t.is_punct(')') {
            depth = depth.saturating_sub(1);
        } else if t.is_punct(',') && depth == 0 {
            out.push(&toks[start..k]);
            start = k + 1;
        }
    }
    out.push(&toks[start..]);
    out
}
