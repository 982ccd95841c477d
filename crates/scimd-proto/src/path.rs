//! Attribute paths (RFC 7644 §3.10): `[URI ":"] ATTRNAME ["." subAttr]`.

use std::fmt;

/// A syntactic attribute path, not yet resolved against a schema.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttrPath {
    /// The schema URN prefix, when the path is fully qualified.
    pub uri: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

/// RFC 7643 §2.1: `ATTRNAME = ALPHA *(nameChar)`, `nameChar = "-" / "_" / DIGIT / ALPHA`,
/// plus the `$ref` sub-attribute.
pub fn is_attr_name(s: &str) -> bool {
    if s == "$ref" {
        return true;
    }
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Characters a URN may hold (RFC 8141 §2: ASCII; anything else is percent-encoded), less
/// those that delimit paths and filters.
fn is_urn_text(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '[' | ']' | '\\' | '<' | '>'))
}

impl AttrPath {
    pub fn simple(name: impl Into<String>) -> AttrPath {
        AttrPath { uri: None, name: name.into(), sub: None }
    }

    /// Parses `name`, `name.sub`, `urn:…:name` or `urn:…:name.sub`.
    pub fn parse(text: &str) -> Result<AttrPath, String> {
        let text = text.trim();
        // `get`, not indexing: the first four bytes of client text may end inside a character.
        let qualified = text.len() > 4 && text.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"));
        let (uri, rest) = match text.rsplit_once(':') {
            Some((uri, rest)) if qualified => (Some(uri.to_string()), rest),
            _ => (None, text),
        };
        if uri.as_deref().is_some_and(|u| !is_urn_text(u)) {
            return Err(format!("'{text}' is not a valid attribute path"));
        }
        let (name, sub) = match rest.split_once('.') {
            Some((n, s)) => (n, Some(s)),
            None => (rest, None),
        };
        if !is_attr_name(name) {
            return Err(format!("'{text}' is not a valid attribute path"));
        }
        if let Some(s) = sub
            && !is_attr_name(s)
        {
            return Err(format!("'{text}' is not a valid attribute path"));
        }
        Ok(AttrPath { uri, name: name.to_string(), sub: sub.map(str::to_string) })
    }

    /// Parses a comma-separated list, as in the `attributes` and `excludedAttributes`
    /// query parameters (RFC 7644 §3.4.2.5). Empty items are skipped.
    pub fn parse_list(text: &str) -> Result<Vec<AttrPath>, String> {
        text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(AttrPath::parse).collect()
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(uri) = &self.uri {
            write!(f, "{uri}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_simple_dotted_and_urn_paths() {
        assert_eq!(AttrPath::parse("userName").unwrap(), AttrPath::simple("userName"));
        let p = AttrPath::parse("name.givenName").unwrap();
        assert_eq!((p.name.as_str(), p.sub.as_deref()), ("name", Some("givenName")));
        let p = AttrPath::parse("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value").unwrap();
        assert_eq!(p.uri.as_deref(), Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"));
        assert_eq!((p.name.as_str(), p.sub.as_deref()), ("manager", Some("value")));
        let p = AttrPath::parse("members.$ref").unwrap();
        assert_eq!(p.sub.as_deref(), Some("$ref"));
    }

    #[test]
    fn rejects_malformed_paths() {
        for bad in [
            "",
            "1abc",
            "name.",
            "a.b.c",
            "na me",
            "urn:x:",
            "emails[type eq \"w\"]",
            // Client text in any script: refused, whatever byte a character starts at.
            "ab€x",
            "€",
            "a€",
            "urn€:x",
            "ur€:x",
            "urn:€",
            "userName.€",
            "e\u{301}mails",
            "😀",
            "a😀.b",
            "\u{0}",
            "user\u{0}Name",
            "\u{feff}userName",
        ] {
            assert!(AttrPath::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn round_trips_through_display() {
        for text in ["userName", "name.familyName", "urn:ietf:params:scim:schemas:core:2.0:User:userName"] {
            assert_eq!(AttrPath::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn parses_lists() {
        let l = AttrPath::parse_list("userName, name.givenName,,emails").unwrap();
        assert_eq!(l.len(), 3);
        assert!(AttrPath::parse_list("userName,bad path").is_err());
    }
}
