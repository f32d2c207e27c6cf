//! Event-name validation.
//!
//! An event name is non-empty UTF-8 of at most [`MAX_NAME_BYTES`] bytes, containing no `+`,
//! `#` or NUL. A leading `$` marks a system event, which only the library emits. `.`
//! separates segments.

use crate::error::Error;

/// The longest event name or pattern, in bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// The bytes no event name may hold: NUL and the wildcards `+` and `#`.
const FORBIDDEN_IN_NAMES: [bool; 256] = {
    let mut table = [false; 256];
    table[0] = true;
    table[b'+' as usize] = true;
    table[b'#' as usize] = true;
    table
};

/// The prefix of system events (`$peer.up`, `$error`, ...), reserved for the library.
pub const SYSTEM_PREFIX: char = '$';

/// Checks that `name` is a valid event name (system or user).
///
/// ```
/// use demitter_core::validate_name;
/// assert!(validate_name("user.login").is_ok());
/// assert!(validate_name("user.+").is_err());
/// assert!(validate_name("").is_err());
/// ```
pub fn validate_name(name: &str) -> Result<(), Error> {
    // Every emit checks its name: one pass over the bytes finds any of the three
    // forbidden ones, and only a name that has one is looked at again for the reason.
    let clean = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && !name.bytes().any(|b| FORBIDDEN_IN_NAMES[usize::from(b)]);
    if clean {
        return Ok(());
    }
    let reason = short_text_problem(name).or_else(|| {
        name.bytes()
            .any(|b| b == b'+' || b == b'#')
            .then_some("it contains a wildcard (`+` or `#`); wildcards belong in patterns")
    });
    match reason {
        Some(reason) => Err(Error::InvalidName {
            name: truncate_for_display(name),
            reason,
        }),
        None => Ok(()),
    }
}

/// Checks that `name` is a valid name a user may emit: valid, and not a system event.
pub fn validate_user_name(name: &str) -> Result<(), Error> {
    validate_name(name)?;
    if is_system(name) {
        return Err(Error::ReservedName(name.to_owned()));
    }
    Ok(())
}

/// Whether `name` is a system event (starts with `$`).
pub fn is_system(name: &str) -> bool {
    name.starts_with(SYSTEM_PREFIX)
}

/// Checks a listener group's name: non-empty, at most 255 bytes, no `.`, `+`, `#` or NUL,
/// not starting with `$`.
///
/// ```
/// use demitter_core::validate_group;
/// assert!(validate_group("workers-1").is_ok());
/// assert!(validate_group("a.b").is_err());
/// ```
pub fn validate_group(group: &str) -> Result<(), Error> {
    let reason = short_text_problem(group).or_else(|| {
        if group.contains(['.', '+', '#']) {
            Some("it contains `.`, `+` or `#`")
        } else if group.starts_with('$') {
            Some("it starts with `$`")
        } else {
            None
        }
    });
    match reason {
        Some(reason) => Err(Error::InvalidGroup {
            group: truncate_for_display(group),
            reason,
        }),
        None => Ok(()),
    }
}

/// What breaks the rules names, patterns and node ids share (non-empty, at most 255 bytes,
/// no NUL), if anything.
pub(crate) fn short_text_problem(text: &str) -> Option<&'static str> {
    if text.is_empty() {
        Some("it is empty")
    } else if text.len() > MAX_NAME_BYTES {
        Some("it is longer than 255 bytes")
    } else if text.bytes().any(|b| b == 0) {
        Some("it contains a NUL byte")
    } else {
        None
    }
}

/// Shortens user input quoted in an error so a hostile 1 MiB name does not become a 1 MiB
/// error message.
pub(crate) fn truncate_for_display(s: &str) -> String {
    const SHOWN: usize = 64;
    if s.len() <= SHOWN {
        return s.to_owned();
    }
    let mut end = SHOWN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_are_checked() {
        for bad in ["", "a.b", "a+", "#", "$x", "a\0"] {
            assert!(validate_group(bad).is_err(), "{bad:?}");
        }
        assert!(validate_group("workers-1").is_ok());
    }

    #[test]
    fn accepts_ordinary_and_unicode_names() {
        for name in [
            "a",
            "user.login",
            "$peer.up",
            "a..b",
            "ünïcødé.事件",
            "user:login",
        ] {
            assert!(validate_name(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn rejects_bad_names_with_reasons() {
        let long = "x".repeat(256);
        for (name, needle) in [
            ("", "empty"),
            ("a+", "wildcard"),
            ("#", "wildcard"),
            ("a\0b", "NUL"),
            (long.as_str(), "255"),
        ] {
            let err = validate_name(name).expect_err(name).to_string();
            assert!(err.contains(needle), "{err}");
        }
        assert!(validate_name(&"x".repeat(255)).is_ok());
    }

    #[test]
    fn user_names_may_not_be_system_events() {
        assert!(matches!(
            validate_user_name("$peer.up"),
            Err(Error::ReservedName(_))
        ));
        assert!(validate_user_name("peer.up").is_ok());
    }

    #[test]
    fn long_input_is_truncated_in_errors() {
        let name = "é".repeat(1000) + "+";
        let err = validate_name(&name).expect_err("wildcard").to_string();
        assert!(err.len() < 200, "{err}");
    }

    proptest::proptest! {
        /// The one-pass check accepts exactly the names the rules allow.
        #[test]
        fn the_fast_check_agrees_with_the_rules(name in "[a-z.+#\\x00$é]{0,8}|[a-z]{250,260}") {
            let allowed = !name.is_empty()
                && name.len() <= MAX_NAME_BYTES
                && !name.contains(['\0', '+', '#']);
            proptest::prop_assert_eq!(validate_name(&name).is_ok(), allowed, "{:?}", name);
        }
    }
}
