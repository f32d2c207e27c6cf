//! Event names and node ids as NATS subjects, and patterns as NATS subscriptions.
//!
//! A NATS subject is tokens separated by `.`; a token is non-empty and holds no whitespace,
//! `*` or `>`. Our names allow any bytes but NUL, `+` and `#`, and empty segments, so each
//! segment is escaped, reversibly: `A-Z a-z 0-9 - _ : $` stay, every other byte is written
//! `~HH` (two upper-case hex digits), and an empty segment is `~`.
//!
//! ```text
//! event   = PREFIX ".e." escape(sender) "." escape(segment) *("." escape(segment))
//! control = PREFIX ".c." escape(sender) [ "." escape(peer) ]   ; a peer: for it alone
//! ```
//!
//! A pattern becomes a subscription as exact as NATS can say it: a segment that is all `+`
//! is `*`, a segment with `#` ends the subscription with `>`, any other segment with a
//! wildcard is `*`. Where that is coarser than the pattern (`a+b`, `#` matching `$…`), the
//! core applies the exact pattern to what arrives, as it does for ZeroMQ's prefixes.
//!
//! ```
//! use demitter_nats::subject;
//! assert_eq!(subject::escape_segment("user login"), "user~20login");
//! assert_eq!(subject::unescape_segment("user~20login").as_deref(), Some("user login"));
//! assert_eq!(subject::escape_name("a..b"), "a.~.b");
//! assert_eq!(subject::pattern_tokens("user.+.#"), "user.*.>");
//! ```

use std::fmt::Write as _;

/// Whether `byte` stays as it is in a token.
fn is_plain(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b':' | b'$')
}

/// One segment of a name (or a node id) as one NATS token.
pub fn escape_segment(segment: &str) -> String {
    if segment.is_empty() {
        return "~".to_owned();
    }
    let mut token = String::with_capacity(segment.len());
    for &byte in segment.as_bytes() {
        if is_plain(byte) {
            token.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(token, "~{byte:02X}");
        }
    }
    token
}

/// The segment a token stands for; `None` if it is not one [`escape_segment`] writes.
pub fn unescape_segment(token: &str) -> Option<String> {
    if token == "~" {
        return Some(String::new());
    }
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'~' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex
                    .iter()
                    .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b))
                {
                    return None;
                }
                let byte = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                if is_plain(byte) {
                    // Plain bytes are never escaped: one spelling per segment.
                    return None;
                }
                out.push(byte);
                i += 3;
            }
            b if is_plain(b) => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    if out.is_empty() {
        return None;
    }
    String::from_utf8(out).ok()
}

/// A whole name as tokens: its segments escaped, joined by `.`.
pub fn escape_name(name: &str) -> String {
    let mut tokens = String::with_capacity(name.len() + 8);
    for (i, segment) in name.split('.').enumerate() {
        if i > 0 {
            tokens.push('.');
        }
        tokens.push_str(&escape_segment(segment));
    }
    tokens
}

/// The name a run of tokens stands for; `None` if one token is not an escaped segment,
/// or stands for a segment holding `.` (`~2E`), which [`escape_name`] never writes: a name
/// has one spelling.
pub fn unescape_name(tokens: &str) -> Option<String> {
    let mut name = String::with_capacity(tokens.len());
    for (i, token) in tokens.split('.').enumerate() {
        if i > 0 {
            name.push('.');
        }
        let segment = unescape_segment(token)?;
        if segment.contains('.') {
            return None;
        }
        name.push_str(&segment);
    }
    Some(name)
}

/// A pattern as NATS subscription tokens, matching at least every name the pattern
/// matches (see the module docs).
pub fn pattern_tokens(pattern: &str) -> String {
    let mut tokens = String::with_capacity(pattern.len() + 8);
    for (i, segment) in pattern.split('.').enumerate() {
        if i > 0 {
            tokens.push('.');
        }
        if segment.contains('#') {
            tokens.push('>');
            break;
        }
        if segment.contains('+') {
            tokens.push('*');
        } else {
            tokens.push_str(&escape_segment(segment));
        }
    }
    tokens
}

/// What a subject of the bus under `prefix` says: the kind of frame, the sender's token
/// (still escaped) and, for an event, the name's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusSubject<'a> {
    /// `PREFIX.e.SENDER.NAME…`
    Event {
        /// The sender's escaped id.
        sender: &'a str,
        /// The name's escaped segments, joined by `.`.
        name: &'a str,
    },
    /// `PREFIX.c.SENDER`, or `PREFIX.c.SENDER.PEER` for one peer.
    Control {
        /// The sender's escaped id.
        sender: &'a str,
        /// The escaped id of the one peer it is for, if it is for one.
        to: Option<&'a str>,
    },
}

impl<'a> BusSubject<'a> {
    /// Splits `subject`; `None` if it is not one of the bus's subjects under `prefix`.
    ///
    /// ```
    /// use demitter_nats::subject::BusSubject;
    /// assert_eq!(
    ///     BusSubject::parse("demitter", "demitter.e.shop-1.orders.eu~20west"),
    ///     Some(BusSubject::Event { sender: "shop-1", name: "orders.eu~20west" })
    /// );
    /// assert_eq!(
    ///     BusSubject::parse("demitter", "demitter.c.shop-1.shop-2"),
    ///     Some(BusSubject::Control { sender: "shop-1", to: Some("shop-2") })
    /// );
    /// assert_eq!(BusSubject::parse("demitter", "demitter.c.shop-1.a.b"), None);
    /// ```
    pub fn parse(prefix: &str, subject: &'a str) -> Option<Self> {
        let rest = subject.strip_prefix(prefix)?.strip_prefix('.')?;
        if let Some(rest) = rest.strip_prefix("e.") {
            let (sender, name) = rest.split_once('.')?;
            (!sender.is_empty() && !name.is_empty()).then_some(Self::Event { sender, name })
        } else {
            let rest = rest.strip_prefix("c.")?;
            let (sender, to) = match rest.split_once('.') {
                Some((sender, to)) => (sender, Some(to)),
                None => (rest, None),
            };
            let token = |t: &str| !t.is_empty() && !t.contains('.');
            (token(sender) && to.is_none_or(token)).then_some(Self::Control { sender, to })
        }
    }

    /// The sender's escaped id.
    pub fn sender(&self) -> &'a str {
        match self {
            Self::Event { sender, .. } | Self::Control { sender, .. } => sender,
        }
    }
}

/// Whether the NATS subscription `filter` matches `subject` (token by token, `*` one
/// token, `>` one or more at the end): what a server does, for tests and for checking.
pub fn filter_matches(filter: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for wanted in filter.split('.') {
        if wanted == ">" {
            return subject_tokens.next().is_some();
        }
        match subject_tokens.next() {
            Some(token) if wanted == "*" || wanted == token => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

#[cfg(test)]
mod tests {
    use demitter_core::Pattern;
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn escaping_is_reversible_and_one_spelling() {
        for segment in [
            "",
            "a",
            "user login",
            "é",
            "~",
            "a~b",
            "*",
            ">",
            " ",
            "$peer",
        ] {
            let token = escape_segment(segment);
            assert!(!token.is_empty() && !token.contains(['.', ' ', '*', '>']));
            assert_eq!(
                unescape_segment(&token).as_deref(),
                Some(segment),
                "{token}"
            );
        }
        for bad in ["", "~4", "~zz", "~41", "a b", "~~", "*", "~e9"] {
            assert_eq!(unescape_segment(bad), None, "{bad:?} is no escaped segment");
        }
    }

    #[test]
    fn the_wire_format_documents_examples_hold() {
        // docs/wire-format.md, "NATS".
        assert_eq!(
            format!(
                "demitter.e.{}.{}",
                escape_segment("shop-1"),
                escape_name("orders.eu west")
            ),
            "demitter.e.shop-1.orders.eu~20west"
        );
        assert_eq!(pattern_tokens("orders.+"), "orders.*");
    }

    #[test]
    fn patterns_become_the_closest_subscriptions() {
        assert_eq!(pattern_tokens("a.b"), "a.b");
        assert_eq!(pattern_tokens("a.+"), "a.*");
        assert_eq!(pattern_tokens("+.b"), "*.b");
        assert_eq!(pattern_tokens("a.#"), "a.>");
        assert_eq!(pattern_tokens("a+b.c"), "*.c");
        assert_eq!(pattern_tokens("a.b#.c"), "a.>");
        assert_eq!(pattern_tokens("#"), ">");
        assert!(filter_matches("a.>", "a.b.c"));
        assert!(!filter_matches("a.>", "a"));
        assert!(filter_matches("a.*", "a.~"));
        assert!(!filter_matches("a.*", "a.b.c"));
    }

    #[test]
    fn a_name_has_one_spelling() {
        assert_eq!(unescape_name("a.~.b").as_deref(), Some("a..b"));
        assert_eq!(unescape_name("a~2Eb"), None, "a dot is a token boundary");
        assert_eq!(
            unescape_segment("a~2Eb").as_deref(),
            Some("a.b"),
            "in an id it is not"
        );
    }

    #[test]
    fn only_the_bus_subjects_parse() {
        let parse = |s| BusSubject::parse("p", s);
        assert_eq!(
            parse("p.c.a~20b"),
            Some(BusSubject::Control {
                sender: "a~20b",
                to: None
            })
        );
        assert_eq!(
            parse("p.c.a.b"),
            Some(BusSubject::Control {
                sender: "a",
                to: Some("b")
            })
        );
        assert_eq!(
            parse("p.e.a.b.c"),
            Some(BusSubject::Event {
                sender: "a",
                name: "b.c"
            })
        );
        for bad in [
            "p",
            "p.",
            "p.e.a",
            "p.e..b",
            "p.c.",
            "p.c.a.",
            "p.c.a.b.c",
            "p.x.a",
            "px.c.a",
            "q.c.a",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            "[a-c]{1,3}",
            "[a-z0-9 ~é$:_-]{0,6}",
            any::<String>().prop_map(|s| s.replace(['\0', '+', '#', '.'], "")),
        ]
    }

    fn name() -> impl Strategy<Value = String> {
        prop::collection::vec(segment(), 1..5).prop_map(|segments| segments.join("."))
    }

    fn pattern() -> impl Strategy<Value = String> {
        let part = prop_oneof![
            segment(),
            Just("+".to_owned()),
            Just("#".to_owned()),
            "[a-c]{0,2}[+#][a-c]{0,2}",
        ];
        prop::collection::vec(part, 1..5).prop_map(|parts| parts.join("."))
    }

    proptest! {
        #[test]
        fn names_round_trip(name in name()) {
            let tokens = escape_name(&name);
            prop_assert!(tokens.split('.').all(|t| !t.is_empty() && !t.contains([' ', '*', '>'])));
            prop_assert_eq!(unescape_name(&tokens), Some(name));
        }

        #[test]
        fn a_subscription_matches_whatever_its_pattern_matches(
            pattern in pattern(),
            name in name(),
        ) {
            let compiled = Pattern::new(&pattern);
            prop_assume!(compiled.is_ok());
            if compiled.is_ok_and(|p| p.matches(&name)) {
                prop_assert!(
                    filter_matches(&pattern_tokens(&pattern), &escape_name(&name)),
                    "{} does not match {}", pattern_tokens(&pattern), escape_name(&name)
                );
            }
        }

        #[test]
        fn names_that_match_their_own_exact_pattern_only(a in name(), b in name()) {
            prop_assert_eq!(
                filter_matches(&pattern_tokens(&a), &escape_name(&b)),
                a == b
            );
        }
    }
}
