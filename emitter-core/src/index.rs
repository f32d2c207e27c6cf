//! [`PatternIndex`]: patterns indexed so that matching one event name costs about the same
//! with 10 or 10,000 patterns.
//!
//! Exact patterns (no wildcard) live in a hash map keyed by the name they match. Wildcard
//! patterns live in a byte trie whose wildcard edges lead to nodes that loop on the bytes
//! their wildcard accepts; matching runs the trie as an NFA over the name, so the work
//! depends on the name's length and on how many patterns share its prefixes, not on how
//! many patterns there are.

use foldhash::HashMap;
use foldhash::HashMapExt as _;
use std::sync::Arc;

use crate::pattern::{Pattern, Token};

/// A map from [`Pattern`] to `T`, with fast lookup of every entry whose pattern matches a
/// name.
///
/// ```
/// use demitter_core::{Pattern, PatternIndex};
/// let mut index = PatternIndex::new();
/// *index.get_or_insert_with(&Pattern::new("user.+")?, || 0) += 1;
/// *index.get_or_insert_with(&Pattern::new("user.login")?, || 0) += 10;
/// *index.get_or_insert_with(&Pattern::new("order.#")?, || 0) += 100;
/// let mut sum = 0;
/// index.for_each_match("user.login", |_, n| sum += n);
/// assert_eq!(sum, 11);
/// # Ok::<(), demitter_core::Error>(())
/// ```
#[derive(Debug)]
pub struct PatternIndex<T> {
    exact: HashMap<Arc<str>, (Pattern, T)>,
    wild: Node<T>,
    wild_len: usize,
}

#[derive(Debug)]
struct Node<T> {
    /// The wildcard whose edge led here: this node loops on the bytes it accepts.
    looping: Option<Token>,
    bytes: Vec<(u8, Node<T>)>,
    plus: Option<Box<Node<T>>>,
    hash: Option<Box<Node<T>>>,
    value: Option<(Pattern, T)>,
}

impl<T> Node<T> {
    fn new(looping: Option<Token>) -> Self {
        Self {
            looping,
            bytes: Vec::new(),
            plus: None,
            hash: None,
            value: None,
        }
    }

    fn is_empty(&self) -> bool {
        self.value.is_none() && self.bytes.is_empty() && self.plus.is_none() && self.hash.is_none()
    }

    fn child(&self, byte: u8) -> Option<&Node<T>> {
        self.bytes.iter().find(|(b, _)| *b == byte).map(|(_, n)| n)
    }

    fn child_mut_or_insert(&mut self, token: Token) -> &mut Node<T> {
        match token {
            Token::Plus => self
                .plus
                .get_or_insert_with(|| Box::new(Node::new(Some(token)))),
            Token::Hash => self
                .hash
                .get_or_insert_with(|| Box::new(Node::new(Some(token)))),
            Token::Byte(byte) => {
                let at = self
                    .bytes
                    .iter()
                    .position(|(b, _)| *b == byte)
                    .unwrap_or_else(|| {
                        self.bytes.push((byte, Node::new(None)));
                        self.bytes.len() - 1
                    });
                &mut self.bytes[at].1
            }
        }
    }

    fn find_mut(&mut self, tokens: &[Token]) -> Option<&mut Node<T>> {
        let Some((first, rest)) = tokens.split_first() else {
            return Some(self);
        };
        let child = match first {
            Token::Plus => self.plus.as_deref_mut()?,
            Token::Hash => self.hash.as_deref_mut()?,
            Token::Byte(byte) => &mut self.bytes.iter_mut().find(|(b, _)| b == byte)?.1,
        };
        child.find_mut(rest)
    }

    /// Removes the value at `tokens` and prunes the branches left empty.
    fn remove(&mut self, tokens: &[Token]) -> Option<(Pattern, T)> {
        let Some((first, rest)) = tokens.split_first() else {
            return self.value.take();
        };
        match first {
            Token::Plus | Token::Hash => {
                let slot = if *first == Token::Plus {
                    &mut self.plus
                } else {
                    &mut self.hash
                };
                let child = slot.as_deref_mut()?;
                let removed = child.remove(rest);
                if child.is_empty() {
                    *slot = None;
                }
                removed
            }
            Token::Byte(byte) => {
                let at = self.bytes.iter().position(|(b, _)| b == byte)?;
                let removed = self.bytes[at].1.remove(rest);
                if self.bytes[at].1.is_empty() {
                    self.bytes.swap_remove(at);
                }
                removed
            }
        }
    }

    fn for_each<'a>(&'a self, f: &mut impl FnMut(&'a Pattern, &'a T)) {
        if let Some((p, v)) = &self.value {
            f(p, v);
        }
        for (_, child) in &self.bytes {
            child.for_each(f);
        }
        for child in [&self.plus, &self.hash].into_iter().flatten() {
            child.for_each(f);
        }
    }
}

/// The active nodes of the trie NFA, without duplicates.
struct Active<'a, T>(Vec<&'a Node<T>>);

impl<'a, T> Active<'a, T> {
    /// Adds `node` and every node reachable from it by wildcards that match nothing.
    fn add(&mut self, node: &'a Node<T>) {
        if self.0.iter().any(|n| std::ptr::eq(*n, node)) {
            return;
        }
        self.0.push(node);
        if let Some(plus) = &node.plus {
            self.add(plus);
        }
        if let Some(hash) = &node.hash {
            self.add(hash);
        }
    }
}

impl<T> Default for PatternIndex<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> PatternIndex<T> {
    /// An empty index.
    pub fn new() -> Self {
        Self {
            exact: HashMap::new(),
            wild: Node::new(None),
            wild_len: 0,
        }
    }

    /// How many patterns the index holds.
    pub fn len(&self) -> usize {
        self.exact.len() + self.wild_len
    }

    /// Whether the index holds no pattern.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value stored for exactly this pattern.
    pub fn get(&self, pattern: &Pattern) -> Option<&T> {
        if pattern.is_exact() {
            return self.exact.get(pattern.as_str()).map(|(_, v)| v);
        }
        let mut node = &self.wild;
        for token in pattern.tokens() {
            node = match token {
                Token::Plus => node.plus.as_deref()?,
                Token::Hash => node.hash.as_deref()?,
                Token::Byte(b) => node.child(b)?,
            };
        }
        node.value.as_ref().map(|(_, v)| v)
    }

    /// The value stored for exactly this pattern, mutably.
    pub fn get_mut(&mut self, pattern: &Pattern) -> Option<&mut T> {
        if pattern.is_exact() {
            return self.exact.get_mut(pattern.as_str()).map(|(_, v)| v);
        }
        let node = self.wild.find_mut(&pattern.tokens())?;
        node.value.as_mut().map(|(_, v)| v)
    }

    /// The value for this pattern, inserting `make()` first if there is none.
    pub fn get_or_insert_with(&mut self, pattern: &Pattern, make: impl FnOnce() -> T) -> &mut T {
        if pattern.is_exact() {
            let key: Arc<str> = pattern.as_str().into();
            return &mut self
                .exact
                .entry(key)
                .or_insert_with(|| (pattern.clone(), make()))
                .1;
        }
        let mut node = &mut self.wild;
        for token in pattern.tokens() {
            node = node.child_mut_or_insert(token);
        }
        if node.value.is_none() {
            self.wild_len += 1;
        }
        &mut node
            .value
            .get_or_insert_with(|| (pattern.clone(), make()))
            .1
    }

    /// Removes this pattern's value.
    pub fn remove(&mut self, pattern: &Pattern) -> Option<T> {
        if pattern.is_exact() {
            return self.exact.remove(pattern.as_str()).map(|(_, v)| v);
        }
        let removed = self.wild.remove(&pattern.tokens());
        if removed.is_some() {
            self.wild_len -= 1;
        }
        removed.map(|(_, v)| v)
    }

    /// Calls `f` with every pattern that matches `name`, and its value, each once.
    pub fn for_each_match<'a>(&'a self, name: &str, mut f: impl FnMut(&'a Pattern, &'a T)) {
        if let Some((p, v)) = self.exact.get(name) {
            f(p, v);
        }
        if self.wild_len == 0 {
            return;
        }
        let mut active = Active(Vec::with_capacity(8));
        active.add(&self.wild);
        let mut next = Active(Vec::with_capacity(8));
        for &byte in name.as_bytes() {
            next.0.clear();
            for node in &active.0 {
                if let Some(child) = node.child(byte) {
                    next.add(child);
                }
                if node.looping.is_some_and(|t| t.wildcard_accepts(byte)) {
                    next.add(node);
                }
            }
            std::mem::swap(&mut active, &mut next);
            if active.0.is_empty() {
                return;
            }
        }
        for node in active.0 {
            if let Some((p, v)) = &node.value {
                f(p, v);
            }
        }
    }

    /// Every pattern and its value, in no particular order.
    pub fn for_each<'a>(&'a self, mut f: impl FnMut(&'a Pattern, &'a T)) {
        for (p, v) in self.exact.values() {
            f(p, v);
        }
        self.wild.for_each(&mut f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str) -> Pattern {
        Pattern::new(s).expect("valid pattern")
    }

    fn matches(index: &PatternIndex<u32>, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        index.for_each_match(name, |p, _| out.push(p.to_string()));
        out.sort();
        out
    }

    #[test]
    fn agrees_with_single_pattern_matching() {
        let patterns = [
            "a", "a.b", "a.+", "a.#", "#", "+", "+.+", "#.b", "a+b", "a#", "$x.+", "+#", "#+",
            "a.+.c", "a.#.c", "ab",
        ];
        let names = [
            "a", "a.b", "a.", "a.b.c", "ab", "axb", "$x.y", "$x", "b", "x.y.b", "a.$", "",
        ];
        let mut index = PatternIndex::new();
        for p in patterns {
            index.get_or_insert_with(&pat(p), || 0);
        }
        assert_eq!(index.len(), patterns.len());
        for name in names {
            let mut want: Vec<String> = patterns
                .iter()
                .filter(|p| pat(p).matches(name))
                .map(|p| (*p).to_owned())
                .collect();
            want.sort();
            assert_eq!(matches(&index, name), want, "name {name:?}");
        }
    }

    #[test]
    fn remove_prunes_and_keeps_the_rest() {
        let mut index = PatternIndex::new();
        for p in ["a.+", "a.+.c", "a.b", "#"] {
            index.get_or_insert_with(&pat(p), || 1);
        }
        assert_eq!(index.remove(&pat("a.+")), Some(1));
        assert_eq!(index.remove(&pat("a.+")), None);
        assert_eq!(matches(&index, "a.x.c"), vec!["#", "a.+.c"]);
        assert_eq!(index.remove(&pat("a.+.c")), Some(1));
        assert_eq!(index.remove(&pat("#")), Some(1));
        assert!(index.wild.is_empty(), "trie pruned to nothing");
        assert_eq!(index.len(), 1);
        assert_eq!(matches(&index, "a.b"), vec!["a.b"]);
    }

    #[test]
    fn get_and_get_mut_find_exact_entries() {
        let mut index = PatternIndex::new();
        *index.get_or_insert_with(&pat("a.+"), || 0) += 2;
        *index.get_or_insert_with(&pat("a.+"), || 0) += 3;
        assert_eq!(index.get(&pat("a.+")), Some(&5));
        assert_eq!(index.get(&pat("a.#")), None);
        *index.get_mut(&pat("a.+")).expect("present") = 7;
        let mut all = Vec::new();
        index.for_each(|p, v| all.push((p.to_string(), *v)));
        assert_eq!(all, vec![("a.+".to_owned(), 7)]);
    }

    #[test]
    fn many_patterns_with_shared_prefixes() {
        let mut index = PatternIndex::new();
        for i in 0..10_000 {
            index.get_or_insert_with(&pat(&format!("e{i}.+")), || i);
        }
        let mut found = Vec::new();
        index.for_each_match("e4242.x", |_, v| found.push(*v));
        assert_eq!(found, vec![4242]);
    }
}
