//! Listener patterns with partybus's `+` / `#` wildcards.
//!
//! `+` matches any run, possibly empty, of characters other than `.`; `#` matches any run,
//! possibly empty, of characters other than `$`; every other character matches itself.
//! Matching works on bytes: both wildcards exclude an ASCII byte, and no byte of a
//! multi-byte UTF-8 character is ASCII, so byte matching equals character matching.

use std::fmt;
use std::sync::Arc;

use crate::error::Error;
use crate::name::{short_text_problem, truncate_for_display};

/// One step of a compiled pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    /// Matches exactly this byte.
    Byte(u8),
    /// `+`: any run of bytes other than `.`.
    Plus,
    /// `#`: any run of bytes other than `$`.
    Hash,
}

impl Token {
    /// Whether this wildcard token may consume `byte` (never true for [`Token::Byte`]).
    pub(crate) fn wildcard_accepts(self, byte: u8) -> bool {
        match self {
            Token::Plus => byte != b'.',
            Token::Hash => byte != b'$',
            Token::Byte(_) => false,
        }
    }
}

/// A validated listener pattern.
///
/// ```
/// use demitter_core::Pattern;
/// let p = Pattern::new("user.+")?;
/// assert!(p.matches("user.login"));
/// assert!(p.matches("user."));
/// assert!(!p.matches("user.login.ok"));
/// assert!(Pattern::new("user.#")?.matches("user.login.ok"));
/// assert!(!Pattern::new("#")?.matches("$peer.up"));
/// # Ok::<(), demitter_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Pattern {
    text: Arc<str>,
}

impl Pattern {
    /// Parses a pattern: non-empty, at most 255 bytes, no NUL.
    pub fn new(text: &str) -> Result<Self, Error> {
        if let Some(reason) = short_text_problem(text) {
            return Err(Error::InvalidPattern {
                pattern: truncate_for_display(text),
                reason,
            });
        }
        Ok(Self { text: text.into() })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the pattern has no wildcard, so it matches exactly one name: itself.
    pub fn is_exact(&self) -> bool {
        !self.text.bytes().any(|b| b == b'+' || b == b'#')
    }

    /// Whether the pattern matches the event `name`.
    pub fn matches(&self, name: &str) -> bool {
        if self.is_exact() {
            return *self.text == *name;
        }
        let tokens = tokens(&self.text);
        matches_tokens(&tokens, name.as_bytes())
    }

    /// The compiled form, with runs of the same wildcard collapsed (`++` is `+`).
    pub(crate) fn tokens(&self) -> Vec<Token> {
        tokens(&self.text)
    }

    /// The literal prefix before the first wildcard (all of it for an exact pattern).
    ///
    /// Transports that subscribe by prefix (ZeroMQ) subscribe to this.
    pub fn literal_prefix(&self) -> &str {
        let end = self.text.find(['+', '#']).unwrap_or(self.text.len());
        &self.text[..end]
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", &*self.text)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Pattern {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Pattern::new(s)
    }
}

fn tokens(text: &str) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::with_capacity(text.len());
    for b in text.bytes() {
        let token = match b {
            b'+' => Token::Plus,
            b'#' => Token::Hash,
            other => Token::Byte(other),
        };
        // `++` matches what `+` matches, and `##` what `#` does.
        if matches!(token, Token::Plus | Token::Hash) && out.last() == Some(&token) {
            continue;
        }
        out.push(token);
    }
    out
}

/// A set of token positions, 0..=255 (a pattern has at most 255 tokens).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct States([u64; 4]);

impl States {
    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }
    fn iter(self) -> impl Iterator<Item = usize> {
        (0..4).flat_map(move |w| {
            let mut bits = self.0[w];
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let i = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                Some(w * 64 + i)
            })
        })
    }
}

/// Adds the positions reachable by letting wildcards match nothing.
fn close(tokens: &[Token], states: &mut States) {
    for (i, token) in tokens.iter().enumerate() {
        if states.contains(i) && matches!(token, Token::Plus | Token::Hash) {
            states.insert(i + 1);
        }
    }
}

/// Runs the pattern as an NFA over the name: linear in `name.len() * tokens.len()`, no
/// backtracking, no allocation.
fn matches_tokens(tokens: &[Token], name: &[u8]) -> bool {
    let mut states = States::default();
    states.insert(0);
    close(tokens, &mut states);
    for &byte in name {
        let mut next = States::default();
        for i in states.iter() {
            match tokens.get(i) {
                Some(Token::Byte(b)) if *b == byte => next.insert(i + 1),
                Some(&t) if t.wildcard_accepts(byte) => next.insert(i),
                _ => {}
            }
        }
        close(tokens, &mut next);
        if next.is_empty() {
            return false;
        }
        states = next;
    }
    states.contains(tokens.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        Pattern::new(p).expect("valid pattern").matches(n)
    }

    #[test]
    fn semantics_from_the_design() {
        assert!(m("a.+", "a.b"));
        assert!(m("a.+", "a."));
        assert!(!m("a.+", "a.b.c"));
        assert!(m("a.#", "a.b.c"));
        assert!(!m("#", "$peer.up"));
        assert!(m("+", "$peer"));
        assert!(m("#", ""));
    }

    #[test]
    fn wildcards_in_the_middle_and_in_runs() {
        assert!(m("a+b", "axxb"));
        assert!(m("a+b", "ab"));
        assert!(!m("a+b", "a.b"));
        assert!(m("a++b", "axb"));
        assert!(m("#.+", "x.y.z"));
        assert!(m("+#", "a.b"));
        assert!(!m("+#", "a.$b"));
        assert!(m("a#$", "a.b$"));
        assert!(m("事件.+", "事件.開始"));
    }

    #[test]
    fn exact_patterns_and_prefixes() {
        let p = Pattern::new("user.login").expect("valid");
        assert!(p.is_exact());
        assert_eq!(p.literal_prefix(), "user.login");
        let p = Pattern::new("user.+.ok").expect("valid");
        assert!(!p.is_exact());
        assert_eq!(p.literal_prefix(), "user.");
        assert_eq!(Pattern::new("#").expect("valid").literal_prefix(), "");
    }

    #[test]
    fn invalid_patterns_are_errors() {
        assert!(Pattern::new("").is_err());
        assert!(Pattern::new("a\0").is_err());
        assert!(Pattern::new(&"+".repeat(256)).is_err());
        // A maximal pattern of alternating wildcards still matches without blowing up.
        let p = Pattern::new(&"+#".repeat(127)).expect("254 bytes");
        assert!(p.matches(&"a.".repeat(127)));
    }
}
