//! A hand-written lexer and recursive-descent parser for the filter grammar and for
//! PATCH paths. Input length and nesting depth are bounded, so no input can exhaust
//! the stack; every error names what was expected and where.

use super::{CompareOp, Filter, Literal};
use crate::error::{Result, ScimError};
use crate::path::AttrPath;

/// Bounds on filter input, applied before and during parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterLimits {
    /// Longest accepted filter, in bytes.
    pub max_len: usize,
    /// Deepest accepted nesting of parentheses, `not` and value paths.
    pub max_depth: usize,
}

impl Default for FilterLimits {
    fn default() -> Self {
        FilterLimits { max_len: 4096, max_depth: 32 }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Str(String),
    Word(String),
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::LBracket => "'['".into(),
            Tok::RBracket => "']'".into(),
            Tok::Str(s) => format!("the string {}", serde_json::Value::String(s.clone())),
            Tok::Word(w) => format!("'{w}'"),
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '$' | '+')
}

/// Character position (1-based) of a byte offset, for error messages.
fn position(text: &str, byte: usize) -> usize {
    text.char_indices().take_while(|(i, _)| *i < byte).count() + 1
}

fn lex(text: &str) -> Result<Vec<(Tok, usize)>> {
    let mut toks = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < text.len() {
        let c = text[i..].chars().next().expect("in bounds");
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                toks.push((Tok::LParen, i));
                i += 1
            }
            ')' => {
                toks.push((Tok::RParen, i));
                i += 1
            }
            '[' => {
                toks.push((Tok::LBracket, i));
                i += 1
            }
            ']' => {
                toks.push((Tok::RBracket, i));
                i += 1
            }
            '"' => {
                let start = i;
                let mut j = i + 1;
                loop {
                    match bytes.get(j) {
                        None => {
                            return Err(ScimError::invalid_filter(format!(
                                "unterminated string starting at character {}",
                                position(text, start)
                            )));
                        }
                        Some(b'\\') => j += 2,
                        Some(b'"') => break,
                        Some(_) => j += 1,
                    }
                }
                let raw = text.get(start..=j).ok_or_else(|| {
                    ScimError::invalid_filter(format!(
                        "unterminated string starting at character {}",
                        position(text, start)
                    ))
                })?;
                let s: String = serde_json::from_str(raw).map_err(|_| {
                    ScimError::invalid_filter(format!("invalid string literal at character {}", position(text, start)))
                })?;
                if crate::validate::has_nul(&s) {
                    return Err(ScimError::invalid_filter(format!(
                        "the string at character {} contains NUL (U+0000)",
                        position(text, start)
                    )));
                }
                toks.push((Tok::Str(s), start));
                i = j + 1;
            }
            c if is_word_char(c) => {
                let start = i;
                while let Some(c) = text[i..].chars().next() {
                    if !is_word_char(c) {
                        break;
                    }
                    i += c.len_utf8();
                }
                toks.push((Tok::Word(text[start..i].to_string()), start));
            }
            other => {
                return Err(ScimError::invalid_filter(format!(
                    "unexpected character '{other}' at character {}",
                    position(text, i)
                )));
            }
        }
    }
    Ok(toks)
}

struct Parser<'t> {
    text: &'t str,
    toks: Vec<(Tok, usize)>,
    at: usize,
    depth: usize,
    limits: FilterLimits,
    in_value_path: bool,
}

impl<'t> Parser<'t> {
    fn new(text: &'t str, limits: FilterLimits) -> Result<Self> {
        if text.len() > limits.max_len {
            return Err(ScimError::invalid_filter(format!(
                "filter is {} bytes long; the limit is {}",
                text.len(),
                limits.max_len
            )));
        }
        Ok(Parser { text, toks: lex(text)?, at: 0, depth: 0, limits, in_value_path: false })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(t, _)| t)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).map(|(t, _)| t.clone());
        self.at += 1;
        t
    }

    fn here(&self) -> usize {
        let byte = self.toks.get(self.at).map(|(_, p)| *p).unwrap_or(self.text.len());
        position(self.text, byte)
    }

    fn error(&self, expected: &str) -> ScimError {
        let found = match self.peek() {
            Some(t) => t.describe(),
            None => "the end of the filter".into(),
        };
        ScimError::invalid_filter(format!("expected {expected} at character {}, found {found}", self.here()))
    }

    fn descend(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(ScimError::invalid_filter(format!(
                "filter nests deeper than {} levels (at character {})",
                self.limits.max_depth,
                self.here()
            )));
        }
        Ok(())
    }

    fn is_keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn expect(&mut self, tok: Tok, expected: &str) -> Result<()> {
        if self.peek() == Some(&tok) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(expected))
        }
    }

    fn filter(&mut self) -> Result<Filter> {
        let mut left = self.conjunction()?;
        while self.is_keyword("or") {
            self.at += 1;
            let right = self.conjunction()?;
            left = Filter::or(left, right);
        }
        Ok(left)
    }

    fn conjunction(&mut self) -> Result<Filter> {
        let mut left = self.unary()?;
        while self.is_keyword("and") {
            self.at += 1;
            let right = self.unary()?;
            left = Filter::and(left, right);
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter> {
        match self.peek() {
            Some(Tok::LParen) => {
                self.at += 1;
                self.descend()?;
                let inner = self.filter()?;
                self.expect(Tok::RParen, "')' or a logical operator (and, or)")?;
                self.depth -= 1;
                Ok(inner)
            }
            Some(Tok::Word(w))
                if w.eq_ignore_ascii_case("not") && self.toks.get(self.at + 1).map(|t| &t.0) == Some(&Tok::LParen) =>
            {
                self.at += 1;
                self.descend()?;
                let inner = self.unary()?;
                self.depth -= 1;
                Ok(Filter::Not(Box::new(inner)))
            }
            _ => self.attribute_expression(),
        }
    }

    fn attr_path(&mut self) -> Result<AttrPath> {
        match self.peek() {
            Some(Tok::Word(w)) => {
                let path = AttrPath::parse(w).map_err(|_| self.error("an attribute path"))?;
                self.at += 1;
                Ok(path)
            }
            _ => Err(self.error("an attribute path")),
        }
    }

    fn attribute_expression(&mut self) -> Result<Filter> {
        let path = self.attr_path()?;
        if self.peek() == Some(&Tok::LBracket) {
            if self.in_value_path {
                return Err(ScimError::invalid_filter(format!(
                    "value filters cannot be nested (at character {})",
                    self.here()
                )));
            }
            self.at += 1;
            self.descend()?;
            self.in_value_path = true;
            let inner = self.filter()?;
            self.in_value_path = false;
            self.expect(Tok::RBracket, "']' or a logical operator (and, or)")?;
            self.depth -= 1;
            // `emails[type eq "work"].value eq "x"` (sent by Microsoft Entra ID) is the value
            // path `emails[type eq "work" and value eq "x"]`.
            if let Some(Tok::Word(w)) = self.peek()
                && let Some(sub) = w.strip_prefix('.')
            {
                let sub = AttrPath::parse(sub)
                    .ok()
                    .filter(|p| p.uri.is_none() && p.sub.is_none())
                    .ok_or_else(|| self.error("a sub-attribute name after ']'"))?;
                self.at += 1;
                let tail = self.comparison(sub)?;
                return Ok(Filter::ValuePath(path, Box::new(Filter::and(inner, tail))));
            }
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        self.comparison(path)
    }

    fn comparison(&mut self, path: AttrPath) -> Result<Filter> {
        const OPS: &str = "a comparison operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr)";
        let op_word = match self.peek() {
            Some(Tok::Word(w)) => w.clone(),
            _ => return Err(self.error(OPS)),
        };
        if op_word.eq_ignore_ascii_case("pr") {
            self.at += 1;
            return Ok(Filter::Present(path));
        }
        let op = CompareOp::parse(&op_word).ok_or_else(|| self.error(OPS))?;
        self.at += 1;
        let value = self.literal()?;
        Ok(Filter::Compare(path, op, value))
    }

    fn literal(&mut self) -> Result<Literal> {
        const VALUE: &str = "a value (a quoted string, a number, true, false or null)";
        let lit = match self.peek() {
            Some(Tok::Str(s)) => Literal::String(s.clone()),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Literal::Null,
            Some(Tok::Word(w)) => match serde_json::from_str::<serde_json::Number>(w) {
                Ok(n) => Literal::Number(n),
                Err(_) => return Err(self.error(VALUE)),
            },
            _ => return Err(self.error(VALUE)),
        };
        self.at += 1;
        Ok(lit)
    }

    fn finish(&mut self) -> Result<()> {
        if self.at < self.toks.len() {
            Err(self.error("a logical operator (and, or) or the end of the filter"))
        } else {
            Ok(())
        }
    }
}

/// Parses a filter expression.
pub fn parse_filter(text: &str, limits: FilterLimits) -> Result<Filter> {
    let mut p = Parser::new(text, limits)?;
    if p.toks.is_empty() {
        return Err(ScimError::invalid_filter("the filter is empty"));
    }
    let f = p.filter()?;
    p.finish()?;
    Ok(f)
}

/// A PATCH operation's `path` (RFC 7644 §3.5.2): `attrPath` or
/// `valuePath [ "." subAttr ]`, e.g. `emails[type eq "work"].value`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    /// The sub-attribute after a value filter (`.value` above).
    pub sub: Option<String>,
}

/// Parses a PATCH path; errors carry `scimType: invalidPath`.
pub fn parse_patch_path(text: &str, limits: FilterLimits) -> Result<PatchPath> {
    let to_path_error = |e: ScimError| ScimError::invalid_path(format!("invalid path '{text}': {}", e.detail));
    let mut p = Parser::new(text, limits).map_err(to_path_error)?;
    let attr = p.attr_path().map_err(to_path_error)?;
    let mut filter = None;
    let mut sub = None;
    if p.peek() == Some(&Tok::LBracket) {
        p.at += 1;
        p.in_value_path = true;
        p.descend().map_err(to_path_error)?;
        filter = Some(p.filter().map_err(to_path_error)?);
        p.expect(Tok::RBracket, "']'").map_err(to_path_error)?;
        if let Some(Tok::Word(w)) = p.peek()
            && let Some(s) = w.strip_prefix('.')
        {
            if !crate::path::is_attr_name(s) {
                return Err(to_path_error(p.error("a sub-attribute name after ']'")));
            }
            sub = Some(s.to_string());
            p.next();
        }
    }
    p.finish().map_err(|_| {
        ScimError::invalid_path(format!("invalid path '{text}': unexpected text at character {}", p.here()))
    })?;
    Ok(PatchPath { attr, filter, sub })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;

    fn parse(s: &str) -> Filter {
        parse_filter(s, FilterLimits::default()).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> ScimError {
        parse_filter(s, FilterLimits::default()).expect_err(s)
    }

    /// Every filter example of RFC 7644 §3.4.2.2.
    pub const RFC_EXAMPLES: &[&str] = &[
        r#"userName eq "bjensen""#,
        r#"name.familyName co "O'Malley""#,
        r#"userName sw "J""#,
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
        r#"title pr"#,
        r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
        r#"title pr and userType eq "Employee""#,
        r#"title pr or userType eq "Intern""#,
        r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
        r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
        r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
        r#"userType eq "Employee" and (emails.type eq "work")"#,
        r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
        r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
    ];

    #[test]
    fn parses_every_rfc_example_and_prints_it_back() {
        for text in RFC_EXAMPLES {
            let f = parse(text);
            assert_eq!(parse(&f.to_string()), f, "{text}");
        }
    }

    #[test]
    fn builds_the_expected_tree() {
        let f = parse(r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#);
        let Filter::And(a, b) = f else { panic!("expected and") };
        assert_eq!(
            *a,
            Filter::Compare(AttrPath::simple("userType"), CompareOp::Eq, Literal::String("Employee".into()))
        );
        assert!(matches!(*b, Filter::Or(..)));
        // and binds tighter than or
        assert!(matches!(parse("a pr or b pr and c pr"), Filter::Or(_, r) if matches!(*r, Filter::And(..))));
        // left-associative
        assert!(matches!(parse("a pr or b pr or c pr"), Filter::Or(l, _) if matches!(*l, Filter::Or(..))));
    }

    #[test]
    fn operators_keywords_and_literals_in_any_case() {
        assert_eq!(parse(r#"userName EQ "x""#), parse(r#"userName eq "x""#));
        assert_eq!(parse("title PR AND active Eq TRUE"), parse("title pr and active eq true"));
        assert!(matches!(parse("x eq null"), Filter::Compare(_, _, Literal::Null)));
        assert!(matches!(parse("x gt -1.5e3"), Filter::Compare(_, _, Literal::Number(_))));
        assert!(matches!(parse(r#"NOT (x eq "a")"#), Filter::Not(_)));
    }

    #[test]
    fn entra_sub_attribute_after_value_path() {
        let f = parse(r#"emails[type eq "work"].value eq "a@b.c""#);
        assert_eq!(f, parse(r#"emails[type eq "work" and value eq "a@b.c"]"#));
    }

    #[test]
    fn string_escapes_follow_json() {
        let f = parse(r#"displayName eq "a \"quoted\" \\ name \u00e9""#);
        assert_eq!(
            f,
            Filter::Compare(
                AttrPath::simple("displayName"),
                CompareOp::Eq,
                Literal::String("a \"quoted\" \\ name é".into())
            )
        );
    }

    #[test]
    fn errors_say_what_was_expected_and_where() {
        let e = err(r#"userName xx "a""#);
        assert_eq!(e.scim_type, Some(ScimType::InvalidFilter));
        assert!(e.detail.contains("comparison operator") && e.detail.contains("character 10"), "{}", e.detail);
        let e = err(r#"userName eq"#);
        assert!(e.detail.contains("a value") && e.detail.contains("end of the filter"), "{}", e.detail);
        let e = err(r#"(userName eq "a""#);
        assert!(e.detail.contains("')'"), "{}", e.detail);
        let e = err(r#"userName eq "a" junk"#);
        assert!(e.detail.contains("logical operator"), "{}", e.detail);
        let e = err(r#"userName eq "abc"#);
        assert!(e.detail.contains("unterminated"), "{}", e.detail);
        assert!(err("").detail.contains("empty"));
        assert!(err("a[b[c pr]]").detail.contains("nested"));
        assert!(err("userName eq 'x'").detail.contains("unexpected character"));
    }

    #[test]
    fn limits_length_and_depth() {
        let limits = FilterLimits { max_len: 64, max_depth: 4 };
        let long = format!(r#"userName eq "{}""#, "x".repeat(80));
        assert!(parse_filter(&long, limits).unwrap_err().detail.contains("limit is 64"));
        let deep = format!("{}a pr{}", "(".repeat(5), ")".repeat(5));
        assert!(parse_filter(&deep, limits).unwrap_err().detail.contains("deeper than 4"));
        let ok = format!("{}a pr{}", "(".repeat(4), ")".repeat(4));
        assert!(parse_filter(&ok, limits).is_ok());
        // Very deep input is rejected without exhausting the stack.
        let huge = "(".repeat(100_000);
        assert!(parse_filter(&huge, FilterLimits { max_len: 1 << 20, max_depth: 32 }).is_err());
    }

    #[test]
    fn patch_paths() {
        let l = FilterLimits::default();
        let p = parse_patch_path(r#"emails[type eq "work"].value"#, l).unwrap();
        assert_eq!(p.attr, AttrPath::simple("emails"));
        assert_eq!(p.sub.as_deref(), Some("value"));
        assert!(p.filter.is_some());
        let p = parse_patch_path(r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#, l).unwrap();
        assert!(p.sub.is_none() && p.filter.is_some());
        let p = parse_patch_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", l).unwrap();
        assert_eq!(p.attr.name, "manager");
        for bad in ["", "emails[", "emails[type eq \"w\"", "a b", "emails[type eq \"w\"].", "1x"] {
            let e = parse_patch_path(bad, l).expect_err(bad);
            assert_eq!(e.scim_type, Some(ScimType::InvalidPath), "{bad}");
        }
    }
}
