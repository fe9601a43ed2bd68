//! Identifiers of the register: parsed once, at the edge, so that a `SystemId` in hand is always a
//! valid one ("parse, don't validate").
//!
//! Ids of systems, data items and flows are lower-case slugs (`[a-z0-9][a-z0-9._-]*`): they appear
//! in URLs, file names and e-mails, and a spreadsheet's `SITS` and `sits` must not become two
//! systems. People are identified by their e-mail address, kept in lower case for the same reason.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a text is not a valid id or e-mail address. The message names the value in quotes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error(
        "'{0}' is not a valid id (use lower-case letters, digits, '.', '_' or '-', starting with a letter or digit)"
    )]
    Slug(String),
    #[error("'{value}' is not a valid id (expected '{prefix}' and a number)")]
    Numbered { value: String, prefix: &'static str },
    #[error("'{0}' is not a valid e-mail address")]
    Email(String),
    #[error("id is longer than {max} characters: '{value}'")]
    TooLong { value: String, max: usize },
}

/// The longest id accepted; ids are names, not documents.
pub const MAX_ID_LEN: usize = 128;

/// Whether `s` is a valid id as it stands (no trimming), without building one.
pub fn is_valid_slug(s: &str) -> bool {
    s.len() <= MAX_ID_LEN && is_slug(s)
}

fn is_slug(s: &str) -> bool {
    let mut bytes = s.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_lowercase() || b.is_ascii_digit() => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
}

macro_rules! slug_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses a slug, trimming surrounding white space.
            pub fn parse(value: &str) -> Result<Self, IdError> {
                let value = value.trim();
                if value.len() > MAX_ID_LEN {
                    return Err(IdError::TooLong { value: value.to_owned(), max: MAX_ID_LEN });
                }
                if is_slug(value) {
                    Ok(Self(value.to_owned()))
                } else {
                    Err(IdError::Slug(value.to_owned()))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            /// Like `parse`, but keeps the string it is given when it needs no trimming: loading
            /// a million flows then allocates no second copy of their ids.
            fn try_from(value: String) -> Result<Self, IdError> {
                if value.len() <= MAX_ID_LEN && is_slug(&value) {
                    Ok(Self(value))
                } else {
                    Self::parse(&value)
                }
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

slug_id!(
    /// An information system (1.3.1, 1.3.2), e.g. `sits`.
    SystemId
);
slug_id!(
    /// A data item: an information asset or data set, e.g. `student-core`.
    DataItemId
);
slug_id!(
    /// An interface / data flow recorded in the register (2.4), e.g. `f-0042`.
    FlowId
);

/// Ids that the store gives in order: a prefix and a number (`req-7`, `chg-3`).
macro_rules! numbered_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn from_number(n: i64) -> $name {
                $name(format!("{}{n}", $prefix))
            }

            pub fn parse(value: &str) -> Result<$name, IdError> {
                let v = value.trim();
                match v.strip_prefix($prefix) {
                    Some(n) if !n.is_empty() && n.len() <= 18 && n.bytes().all(|b| b.is_ascii_digit()) => {
                        Ok($name(v.to_owned()))
                    }
                    _ => Err(IdError::Numbered { value: v.to_owned(), prefix: $prefix }),
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                $name::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

numbered_id!(
    /// A data sharing / integration request (2.1), e.g. `req-7`.
    RequestId,
    "req-"
);
numbered_id!(
    /// A change notice for a source system (2.5), e.g. `chg-3`.
    NoticeId,
    "chg-"
);

/// A person's e-mail address, their id in the register. Stored in lower case.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Accepts `local@domain.tld`: a local part without spaces, and a domain of at least two
    /// dot-separated labels of letters, digits and hyphens. Deliberately not the whole of RFC 5322:
    /// these are university addresses typed into spreadsheets, and the common mistakes (a missing
    /// `@`, a space, a trailing dot, two addresses in one cell) must be caught.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        let value = value.trim();
        let bad = || IdError::Email(value.to_owned());
        if value.len() > 254 {
            return Err(bad());
        }
        let (local, domain) = value.split_once('@').ok_or_else(bad)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~.-".contains(&b));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if local_ok && domain_ok {
            Ok(Self(value.to_ascii_lowercase()))
        } else {
            Err(bad())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, IdError> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

impl std::borrow::Borrow<str> for Email {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for ok in ["sits", "a", "0", "student-core", "f.0042_x", "moodle-2"] {
            assert!(SystemId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "SITS", "-x", ".x", "a b", "é", "a/b", "_a"] {
            assert!(SystemId::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            SystemId::parse("  sits ").map(String::from),
            Ok("sits".to_owned())
        );
        assert!(matches!(
            SystemId::parse(&"a".repeat(129)),
            Err(IdError::TooLong { .. })
        ));
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse("A.Person@Uni.Example").map(String::from),
            Ok("a.person@uni.example".to_owned())
        );
        for bad in [
            "",
            "a",
            "a@b",
            "@uni.example",
            "a@uni..example",
            "a b@uni.example",
            "a@uni.example;b@uni.example",
            "a@-uni.example",
            "a.@uni.example",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }
}
