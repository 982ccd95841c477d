//! Property tests of the filter language: printing and parsing agree, the evaluator agrees
//! with a naive reference written independently below, and no input makes the parser panic.

use proptest::prelude::*;
use scimd_proto::filter::{CompareOp, Filter, FilterLimits, Literal, check, matches, parse_filter, parse_patch_path};
use scimd_proto::{AttrPath, Registry};
use serde_json::{Map, Number, Value, json};

// ---------------------------------------------------------------- printing and parsing

fn attr_name() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9_-]{0,8}".prop_filter("keywords are not attribute names here", |s| {
        !["and", "or", "not", "pr", "eq", "true", "false", "null"].contains(&s.to_ascii_lowercase().as_str())
    })
}

fn any_path() -> impl Strategy<Value = AttrPath> {
    (
        prop::option::of(Just("urn:ietf:params:scim:schemas:core:2.0:User".to_string())),
        attr_name(),
        prop::option::of(attr_name()),
    )
        .prop_map(|(uri, name, sub)| AttrPath { uri, name, sub })
}

fn any_literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        any::<String>().prop_map(Literal::String),
        any::<i64>().prop_map(|n| Literal::Number(n.into())),
        (-1e12f64..1e12).prop_map(|f| Literal::Number(Number::from_f64(f).unwrap())),
        any::<bool>().prop_map(Literal::Bool),
        Just(Literal::Null),
    ]
}

fn any_op() -> impl Strategy<Value = CompareOp> {
    prop::sample::select(CompareOp::ALL.to_vec())
}

fn simple_name() -> impl Strategy<Value = AttrPath> {
    attr_name().prop_map(AttrPath::simple)
}

fn leaf(path: BoxedStrategy<AttrPath>) -> BoxedStrategy<Filter> {
    prop_oneof![
        (path.clone(), any_op(), any_literal()).prop_map(|(p, o, l)| Filter::Compare(p, o, l)),
        path.prop_map(Filter::Present),
    ]
    .boxed()
}

fn logic(leaf: BoxedStrategy<Filter>) -> BoxedStrategy<Filter> {
    leaf.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::and(a, b)),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::or(a, b)),
            inner.prop_map(|a| Filter::Not(Box::new(a))),
        ]
    })
    .boxed()
}

fn any_filter() -> BoxedStrategy<Filter> {
    let value_path = (attr_name(), logic(leaf(simple_name().boxed())))
        .prop_map(|(n, f)| Filter::ValuePath(AttrPath::simple(n), Box::new(f)));
    logic(prop_oneof![3 => leaf(any_path().boxed()), 1 => value_path].boxed())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn printing_then_parsing_gives_the_same_ast(f in any_filter()) {
        let text = f.to_string();
        let limits = FilterLimits { max_len: 1 << 20, max_depth: 64 };
        let back = parse_filter(&text, limits).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(back, f);
    }

    #[test]
    fn the_parser_never_panics(text in ".{0,200}") {
        let _ = parse_filter(&text, FilterLimits::default());
        let _ = parse_patch_path(&text, FilterLimits::default());
    }

    #[test]
    fn the_parser_never_panics_on_filter_like_text(
        parts in prop::collection::vec(prop::sample::select(vec![
            "(", ")", "[", "]", " ", "and", "or", "not", "eq", "pr", "co", "\"x\"", "\"", "\\", "emails", ".value",
            "userName", "1", "-", "true", "null", "urn:a:b", ":", "$ref", "é"]), 0..40)
    ) {
        let text = parts.concat();
        let _ = parse_filter(&text, FilterLimits::default());
        let _ = parse_patch_path(&text, FilterLimits::default());
    }
}

// ---------------------------------------------------------------- names from clients

/// Text shaped like attribute names and paths, in any script: ASCII names with multi-byte
/// characters (two, three and four bytes, combining marks), NUL and separators around them.
fn name_like() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "a", "ab", "userName", "name", "urn", "urn:", ":", ".", "emails", "$ref", "é", "€", "😀", "\u{301}",
            "\u{0}", "\u{feff}", "-", "_", "1", " ", "[", "]", ",",
        ]),
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// Every place a name or path is read: `attributes` and `sortBy`, body keys, PATCH
    /// paths and path-less keys. Each answers Ok or a SCIM error, never a panic.
    #[test]
    fn no_name_or_path_panics(name in name_like()) {
        let registry = Registry::standard();
        let user = registry.resource("User").unwrap();
        let _ = AttrPath::parse(&name);
        let _ = AttrPath::parse_list(&name);
        let _ = scimd_proto::Projection::parse(Some(&name), Some(&name), &user);
        let _ = parse_patch_path(&name, FilterLimits::default());
        let body = json!({"userName": "u", name.clone(): "x"});
        let _ = scimd_proto::validate::validate_resource(&body, &user);
        let current = json!({"userName": "u"});
        for op in [
            json!({"Operations": [{"op": "add", "path": name, "value": "x"}]}),
            json!({"Operations": [{"op": "replace", "value": {name.clone(): "x"}}]}),
            json!({"Operations": [{"op": "remove", "path": name}]}),
        ] {
            if let Ok(ops) = scimd_proto::patch::parse_request(&op, FilterLimits::default()) {
                let _ = scimd_proto::patch::apply(current.as_object().unwrap(), &user, &ops);
            }
        }
    }
}

// ---------------------------------------------------------------- evaluator vs reference

/// The resource shape the reference understands.
#[derive(Debug, Clone)]
struct RefUser {
    user_name: Option<String>,
    title: Option<String>,
    active: Option<bool>,
    emails: Vec<(Option<String>, Option<String>)>, // (value, type)
    last_modified: Option<String>,
}

const WORDS: &[&str] = &["a", "A", "ab", "Ab", "b", "ba", ""];
const TIMES: &[&str] =
    &["2020-01-01T00:00:00Z", "2020-01-01T01:00:00+02:00", "2019-12-31T23:30:00Z", "2020-01-01T00:00:00.5Z"];

fn word() -> impl Strategy<Value = String> {
    prop::sample::select(WORDS).prop_map(str::to_string)
}

fn ref_user() -> impl Strategy<Value = RefUser> {
    (
        prop::option::of(word()),
        prop::option::of(word()),
        prop::option::of(any::<bool>()),
        prop::collection::vec(
            (
                prop::option::of(word()),
                prop::option::of(prop::sample::select(vec!["work".to_string(), "home".to_string()])),
            ),
            0..3,
        ),
        prop::option::of(prop::sample::select(TIMES).prop_map(str::to_string)),
    )
        .prop_map(|(user_name, title, active, emails, last_modified)| RefUser {
            user_name,
            title,
            active,
            emails,
            last_modified,
        })
}

fn to_json(u: &RefUser) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(v) = &u.user_name {
        m.insert("userName".into(), json!(v));
    }
    if let Some(v) = &u.title {
        m.insert("title".into(), json!(v));
    }
    if let Some(v) = u.active {
        m.insert("active".into(), json!(v));
    }
    if !u.emails.is_empty() {
        let list: Vec<Value> = u
            .emails
            .iter()
            .map(|(v, t)| {
                let mut e = Map::new();
                if let Some(v) = v {
                    e.insert("value".into(), json!(v));
                }
                if let Some(t) = t {
                    e.insert("type".into(), json!(t));
                }
                Value::Object(e)
            })
            .collect();
        m.insert("emails".into(), Value::Array(list));
    }
    if let Some(t) = &u.last_modified {
        m.insert("meta".into(), json!({"lastModified": t}));
    }
    m
}

#[derive(Debug, Clone)]
enum Field {
    UserName,
    Title,
    Active,
    EmailValue,
    EmailType,
    LastModified,
}

fn field_path(f: &Field) -> AttrPath {
    let p = |s: &str| AttrPath::parse(s).unwrap();
    match f {
        Field::UserName => p("userName"),
        Field::Title => p("title"),
        Field::Active => p("active"),
        Field::EmailValue => p("emails.value"),
        Field::EmailType => p("emails.type"),
        Field::LastModified => p("meta.lastModified"),
    }
}

fn typed_leaf() -> BoxedStrategy<Filter> {
    let text_ops = prop::sample::select(CompareOp::ALL.to_vec());
    let order_ops = prop::sample::select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ]);
    let text_field = prop::sample::select(vec![Field::UserName, Field::Title, Field::EmailValue, Field::EmailType]);
    prop_oneof![
        (text_field.clone(), text_ops, word()).prop_map(|(f, op, w)| Filter::Compare(
            field_path(&f),
            op,
            Literal::String(w)
        )),
        (prop::sample::select(vec![CompareOp::Eq, CompareOp::Ne]), any::<bool>()).prop_map(|(op, b)| Filter::Compare(
            field_path(&Field::Active),
            op,
            Literal::Bool(b)
        )),
        (order_ops, prop::sample::select(TIMES)).prop_map(|(op, t)| Filter::Compare(
            field_path(&Field::LastModified),
            op,
            Literal::String(t.into())
        )),
        prop::sample::select(vec![
            Field::UserName,
            Field::Title,
            Field::Active,
            Field::EmailValue,
            Field::EmailType,
            Field::LastModified
        ])
        .prop_map(|f| Filter::Present(field_path(&f))),
        (
            prop::sample::select(vec!["work", "home"]),
            prop::sample::select(vec![CompareOp::Eq, CompareOp::Co, CompareOp::Sw]),
            word()
        )
            .prop_map(|(t, op, w)| {
                Filter::ValuePath(
                    AttrPath::simple("emails"),
                    Box::new(Filter::and(
                        Filter::Compare(AttrPath::simple("type"), CompareOp::Eq, Literal::String(t.into())),
                        Filter::Compare(AttrPath::simple("value"), op, Literal::String(w)),
                    )),
                )
            }),
    ]
    .boxed()
}

fn text_matches(op: CompareOp, actual: &str, lit: &str) -> bool {
    // userName, title, emails.value and emails.type are all caseExact=false in RFC 7643.
    let (a, b) = (actual.to_lowercase(), lit.to_lowercase());
    match op {
        CompareOp::Eq => a == b,
        CompareOp::Ne => a != b,
        CompareOp::Co => a.contains(&b),
        CompareOp::Sw => a.starts_with(&b),
        CompareOp::Ew => a.ends_with(&b),
        CompareOp::Gt => a > b,
        CompareOp::Ge => a >= b,
        CompareOp::Lt => a < b,
        CompareOp::Le => a <= b,
    }
}

fn instant(t: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap()
}

/// The naive reference: each field by hand; `ne` is "no value equals".
fn reference(f: &Filter, u: &RefUser) -> bool {
    match f {
        Filter::And(a, b) => reference(a, u) && reference(b, u),
        Filter::Or(a, b) => reference(a, u) || reference(b, u),
        Filter::Not(a) => !reference(a, u),
        Filter::ValuePath(_, inner) => u.emails.iter().any(|(v, t)| {
            let Filter::And(tf, vf) = inner.as_ref() else { unreachable!() };
            let (Filter::Compare(_, _, Literal::String(want_t)), Filter::Compare(_, op, Literal::String(want_v))) =
                (tf.as_ref(), vf.as_ref())
            else {
                unreachable!()
            };
            t.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(want_t))
                && v.as_deref().is_some_and(|v| text_matches(*op, v, want_v))
        }),
        Filter::Present(p) => values(p, u).iter().any(|v| !v.is_empty()),
        Filter::Compare(p, op, lit) => {
            let vals = values(p, u);
            match (p.to_string().as_str(), lit) {
                ("active", Literal::Bool(b)) => {
                    let eq = u.active == Some(*b);
                    if *op == CompareOp::Ne { !eq } else { eq }
                }
                ("meta.lastModified", Literal::String(t)) => {
                    let hit = |o: CompareOp| {
                        u.last_modified.as_deref().is_some_and(|a| {
                            let (a, b) = (instant(a), instant(t));
                            match o {
                                CompareOp::Eq => a == b,
                                CompareOp::Gt => a > b,
                                CompareOp::Ge => a >= b,
                                CompareOp::Lt => a < b,
                                CompareOp::Le => a <= b,
                                _ => unreachable!(),
                            }
                        })
                    };
                    if *op == CompareOp::Ne { !hit(CompareOp::Eq) } else { hit(*op) }
                }
                (_, Literal::String(w)) => {
                    if *op == CompareOp::Ne {
                        !vals.iter().any(|v| text_matches(CompareOp::Eq, v, w))
                    } else {
                        vals.iter().any(|v| text_matches(*op, v, w))
                    }
                }
                _ => unreachable!(),
            }
        }
    }
}

fn values(p: &AttrPath, u: &RefUser) -> Vec<String> {
    match p.to_string().as_str() {
        "userName" => u.user_name.iter().cloned().collect(),
        "title" => u.title.iter().cloned().collect(),
        "active" => u.active.iter().map(|b| b.to_string()).collect(),
        "emails.value" => u.emails.iter().filter_map(|e| e.0.clone()).collect(),
        "emails.type" => u.emails.iter().filter_map(|e| e.1.clone()).collect(),
        "meta.lastModified" => u.last_modified.iter().cloned().collect(),
        other => unreachable!("{other}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn evaluator_agrees_with_the_reference(f in logic(typed_leaf()), u in ref_user()) {
        let reg = Registry::standard();
        let schema = reg.resource("User").unwrap();
        check(&f, &schema).map_err(|e| TestCaseError::fail(format!("{f}: {e}")))?;
        prop_assert_eq!(matches(&f, &schema, &to_json(&u)), reference(&f, &u), "filter {} on {:?}", f, u);
    }
}
