//! Comparison of JSON values by SCIM type: one home for how strings (per `caseExact`),
//! numbers, booleans and date-times compare, shared by the evaluator and PATCH filters.

use crate::filter::{CompareOp, Literal};
use crate::schema::{AttrType, AttributeDef};
use serde_json::Value;
use std::cmp::Ordering;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Parses an RFC 3339 / xsd:dateTime instant.
pub fn parse_datetime(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// The current instant as `format_datetime` writes it: what every record's time is.
pub fn now() -> String {
    format_datetime(OffsetDateTime::now_utc())
}

/// The instant `days` days ago (at most a hundred years), as `now` writes instants: where a
/// retention or a report's period starts.
pub fn days_ago(days: u64) -> String {
    seconds_ago(days.saturating_mul(86_400))
}

/// The instant `secs` seconds ago (at most a hundred years), as `now` writes instants.
pub fn seconds_ago(secs: u64) -> String {
    format_datetime(OffsetDateTime::now_utc() - time::Duration::seconds(secs.min(36_500 * 86_400) as i64))
}

/// The canonical text of an instant: UTC, microseconds, `Z`. Its byte order is time order,
/// which lets stores compare stored instants as text. Written digit by digit: every request
/// writes at least one (its time), and `format!` with padding costs several times as much.
pub fn format_datetime(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let Ok(year) = u32::try_from(t.year()) else { return padded(t) };
    if year > 9999 {
        return padded(t);
    }
    let mut out = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut n: u32| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, u8::from(t.month()).into());
    put(8, 2, t.day().into());
    put(11, 2, t.hour().into());
    put(14, 2, t.minute().into());
    put(17, 2, t.second().into());
    put(20, 6, t.microsecond());
    // Digits and separators only: always UTF-8.
    std::str::from_utf8(&out).map_or_else(|_| padded(t), str::to_owned)
}

/// `format_datetime` for a year outside 0–9999, which the fixed layout cannot hold.
fn padded(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// The JSON text of a value, or of a map of them, written straight into one string:
/// `Value::to_string` goes through `fmt` a fragment at a time and copies the string as it
/// grows. (Serialising JSON values cannot fail: their keys are strings.)
pub fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// RFC 7644 §3.4.2.2 `pr`: has a non-empty, non-null value.
pub fn is_present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(is_present),
        Value::Object(o) => o.values().any(is_present),
        _ => true,
    }
}

/// Folds text for a comparison that is not case-exact.
pub fn fold_case(s: &str) -> String {
    s.to_lowercase()
}

/// Compares one attribute value with a filter literal according to the attribute's type.
/// Callers have checked (see `filter::check`) that the operator suits the type.
pub fn compare(def: &AttributeDef, actual: &Value, op: CompareOp, literal: &Literal) -> bool {
    match (def.kind, actual, literal) {
        (AttrType::Boolean, Value::Bool(a), Literal::Bool(b)) => match op {
            CompareOp::Eq => a == b,
            CompareOp::Ne => a != b,
            _ => false,
        },
        (AttrType::Integer | AttrType::Decimal, Value::Number(a), Literal::Number(b)) => {
            match (a.as_f64(), b.as_f64()) {
                (Some(a), Some(b)) => ordering_matches(op, a.partial_cmp(&b)),
                _ => false,
            }
        }
        (AttrType::DateTime, Value::String(a), Literal::String(b)) => match (parse_datetime(a), parse_datetime(b)) {
            (Some(a), Some(b)) => ordering_matches(op, Some(a.cmp(&b))),
            _ => false,
        },
        (kind, Value::String(a), Literal::String(b)) if kind.is_textual() => {
            let (a, b) = if def.case_exact { (a.clone(), b.clone()) } else { (fold_case(a), fold_case(b)) };
            match op {
                CompareOp::Co => a.contains(&b),
                CompareOp::Sw => a.starts_with(&b),
                CompareOp::Ew => a.ends_with(&b),
                _ => ordering_matches(op, Some(a.cmp(&b))),
            }
        }
        _ => false,
    }
}

fn ordering_matches(op: CompareOp, ord: Option<Ordering>) -> bool {
    let Some(ord) = ord else { return false };
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

/// Whether two values of an attribute are the same value (strings per `caseExact`).
pub fn same_value(def: &AttributeDef, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) if def.kind.is_textual() && !def.case_exact => {
            fold_case(x) == fold_case(y)
        }
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_datetime_text_orders_like_time() {
        let a = parse_datetime("2011-05-13T04:42:34Z").unwrap();
        let b = parse_datetime("2011-05-13T06:42:34+03:00").unwrap();
        assert!(b < a);
        assert!(format_datetime(b) < format_datetime(a));
        assert_eq!(format_datetime(a), "2011-05-13T04:42:34.000000Z");
    }

    #[test]
    fn datetime_text_is_rfc_3339_with_microseconds_across_the_range() {
        // Against the padded form, which is the layout by definition, and back through an
        // RFC 3339 parser: every field, leap day, the ends of days and of the year range.
        for text in [
            "0000-01-01T00:00:00.000000Z",
            "0999-12-31T23:59:59.999999Z",
            "1970-01-01T00:00:00.000001Z",
            "2024-02-29T12:05:09.050400Z",
            "2026-12-01T13:43:40.527860Z",
            "9999-12-31T23:59:59.999999Z",
        ] {
            let t = parse_datetime(text).unwrap();
            assert_eq!(format_datetime(t), text);
            assert_eq!(format_datetime(t), padded(t));
        }
        let mut t = parse_datetime("1999-12-31T23:59:59.123456+01:30").unwrap();
        for _ in 0..2_000 {
            let text = format_datetime(t);
            assert_eq!(text, padded(t));
            assert_eq!(parse_datetime(&text), Some(t));
            t += time::Duration::new(86_400 * 17 + 3_671, 987_654_000);
        }
    }

    #[test]
    fn presence() {
        assert!(!is_present(&Value::Null));
        assert!(!is_present(&serde_json::json!("")));
        assert!(!is_present(&serde_json::json!([])));
        assert!(!is_present(&serde_json::json!({"a": null})));
        assert!(is_present(&serde_json::json!(false)));
        assert!(is_present(&serde_json::json!([{"value": "x"}])));
    }
}
