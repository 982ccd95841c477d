//! SCIM filters (RFC 7644 §3.4.2.2): a typed AST, a bounded parser with positioned
//! errors, a printer whose output parses back to the same AST, and an in-memory evaluator.

mod eval;
mod parse;

pub use eval::{check, check_element, matches, matches_element};
pub use parse::{FilterLimits, PatchPath, parse_filter, parse_patch_path};

use crate::path::AttrPath;
use serde_json::Number;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    pub const ALL: [CompareOp; 9] = [
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    pub fn parse(word: &str) -> Option<CompareOp> {
        CompareOp::ALL.into_iter().find(|op| op.as_str().eq_ignore_ascii_case(word))
    }

    /// Ordering operators, which RFC 7644 forbids on boolean and binary attributes.
    pub fn is_ordering(self) -> bool {
        matches!(self, CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le)
    }

    /// Substring operators, meaningful on text only.
    pub fn is_substring(self) -> bool {
        matches!(self, CompareOp::Co | CompareOp::Sw | CompareOp::Ew)
    }
}

/// A comparison value (`compValue` in RFC 7644's grammar). Date-times arrive as strings
/// and are compared as instants when the attribute is of type dateTime.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    String(String),
    Number(Number),
    Bool(bool),
    Null,
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::String(s) => write!(f, "{}", serde_json::Value::String(s.clone())),
            Literal::Number(n) => write!(f, "{n}"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Null => f.write_str("null"),
        }
    }
}

/// The filter AST. Inside a `ValuePath`, paths name sub-attributes of the outer attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare(AttrPath, CompareOp, Literal),
    Present(AttrPath),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `emails[type eq "work" and value co "@example.com"]`
    ValuePath(AttrPath, Box<Filter>),
}

impl Filter {
    pub fn and(a: Filter, b: Filter) -> Filter {
        Filter::And(Box::new(a), Box::new(b))
    }
    pub fn or(a: Filter, b: Filter) -> Filter {
        Filter::Or(Box::new(a), Box::new(b))
    }

    /// Visits every attribute path, outermost first; value-path bodies are visited with
    /// their enclosing attribute.
    pub fn walk<'f>(&'f self, f: &mut dyn FnMut(&'f Filter, Option<&'f AttrPath>)) {
        fn go<'f>(node: &'f Filter, outer: Option<&'f AttrPath>, f: &mut dyn FnMut(&'f Filter, Option<&'f AttrPath>)) {
            f(node, outer);
            match node {
                Filter::And(a, b) | Filter::Or(a, b) => {
                    go(a, outer, f);
                    go(b, outer, f);
                }
                Filter::Not(a) => go(a, outer, f),
                Filter::ValuePath(p, inner) => go(inner, Some(p), f),
                Filter::Compare(..) | Filter::Present(_) => {}
            }
        }
        go(self, None, f)
    }

    /// When the filter is `sub eq "a"` or a disjunction of such comparisons on one
    /// sub-attribute, the compared strings: a set a store can match with an index.
    pub fn eq_strings(&self, sub: &str) -> Option<Vec<&str>> {
        match self {
            Filter::Compare(p, CompareOp::Eq, Literal::String(s))
                if p.uri.is_none() && p.sub.is_none() && p.name.eq_ignore_ascii_case(sub) =>
            {
                Some(vec![s.as_str()])
            }
            Filter::Or(a, b) => {
                let mut v = a.eq_strings(sub)?;
                v.extend(b.eq_strings(sub)?);
                Some(v)
            }
            _ => None,
        }
    }

    /// The `sub eq literal` terms of a conjunction, used to build the element a value
    /// path designates when PATCH `add` finds none (`emails[type eq "work"].value`).
    pub fn eq_terms(&self) -> Option<Vec<(&AttrPath, &Literal)>> {
        match self {
            Filter::Compare(p, CompareOp::Eq, lit) if !matches!(lit, Literal::Null) => Some(vec![(p, lit)]),
            Filter::And(a, b) => {
                let mut v = a.eq_terms()?;
                v.extend(b.eq_terms()?);
                Some(v)
            }
            _ => None,
        }
    }

    fn precedence(&self) -> u8 {
        match self {
            Filter::Or(..) => 1,
            Filter::And(..) => 2,
            _ => 3,
        }
    }
}

impl fmt::Display for Filter {
    /// Prints the canonical text; parsing it yields this same AST. Parentheses appear where
    /// the left-associative grammar needs them to keep the tree's shape.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let child = |f: &mut fmt::Formatter<'_>, c: &Filter, min: u8| {
            if c.precedence() < min { write!(f, "({c})") } else { write!(f, "{c}") }
        };
        match self {
            Filter::Compare(p, op, v) => write!(f, "{p} {} {v}", op.as_str()),
            Filter::Present(p) => write!(f, "{p} pr"),
            Filter::And(a, b) => {
                child(f, a, 2)?;
                f.write_str(" and ")?;
                child(f, b, 3)
            }
            Filter::Or(a, b) => {
                child(f, a, 1)?;
                f.write_str(" or ")?;
                child(f, b, 2)
            }
            Filter::Not(a) => write!(f, "not ({a})"),
            Filter::ValuePath(p, inner) => write!(f, "{p}[{inner}]"),
        }
    }
}
