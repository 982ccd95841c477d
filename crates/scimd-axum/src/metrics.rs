//! Prometheus metrics of the SCIM endpoints: requests by tenant, resource type, method and
//! status class; latency by resource type and method; SCIM errors by status and `scimType`;
//! authentication failures. Rendered in Prometheus's text format (version 0.0.4).
//!
//! Tenants are a label of the request counter only, so that the number of series grows with
//! tenants once, not with every histogram bucket.

use axum::extract::Request;
use axum::response::Response;
use scimd_core::Kind;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Latency buckets, in seconds.
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The tenant a request was answered for: set on the response by authentication.
#[derive(Clone)]
pub(crate) struct AnsweredFor(pub(crate) String);

/// A request refused for its credentials (401): set on the response by authentication.
#[derive(Clone, Copy)]
pub(crate) struct AuthFailed;

/// What an error response says: set by `error_response`.
#[derive(Clone)]
pub(crate) struct ErrorInfo {
    pub(crate) scim_type: Option<&'static str>,
    pub(crate) detail: String,
}

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Series {
    /// tenant → (resource, method, status class)
    requests: BTreeMap<String, BTreeMap<(&'static str, &'static str, &'static str), u64>>,
    /// (resource, method)
    latency: BTreeMap<(&'static str, &'static str), Histogram>,
    /// (status, scimType)
    errors: BTreeMap<(u16, &'static str), u64>,
    auth_failures: u64,
}

/// The SCIM endpoints' metrics, shared by every router of a service.
#[derive(Default)]
pub struct Metrics {
    series: Mutex<Series>,
    /// Activity records not written because the recorder's queue was full.
    activity_dropped: AtomicU64,
}

/// The first segment of a path below the SCIM root.
fn first_segment(path: &str) -> &str {
    path.trim_start_matches('/').split('/').next().unwrap_or("")
}

/// The type served at a path below the SCIM root, if it is one of theirs.
pub(crate) fn served(path: &str, kinds: &[Kind]) -> Option<Kind> {
    let first = first_segment(path);
    kinds.iter().find(|k| k.endpoint() == first).copied()
}

/// The resource type a path below the SCIM root is about: one of the types served (named
/// as `meta.resourceType` names it), a discovery endpoint, or `other` (so that no path a
/// client makes up becomes a label).
pub(crate) fn resource(path: &str, kinds: &[Kind]) -> &'static str {
    if let Some(kind) = served(path, kinds) {
        return kind.name();
    }
    match first_segment(path) {
        ".search" => "search",
        "Schemas" => "Schema",
        "ResourceTypes" => "ResourceType",
        "ServiceProviderConfig" => "ServiceProviderConfig",
        _ => "other",
    }
}

fn method(m: &axum::http::Method) -> &'static str {
    match m.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        _ => "other",
    }
}

fn class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// A label value, escaped as the text format wants.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    fn record(&self, tenant: Option<&str>, resource: &'static str, method: &'static str, resp: &Response, secs: f64) {
        let status = resp.status().as_u16();
        let mut s = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let tenant = tenant.unwrap_or("");
        let key = (resource, method, class(status));
        match s.requests.get_mut(tenant) {
            Some(of_tenant) => *of_tenant.entry(key).or_default() += 1,
            None => {
                s.requests.insert(tenant.to_string(), BTreeMap::from([(key, 1)]));
            }
        }
        let h = s.latency.entry((resource, method)).or_default();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
        if status >= 400 {
            let scim_type = resp.extensions().get::<ErrorInfo>().and_then(|t| t.scim_type).unwrap_or("");
            *s.errors.entry((status, scim_type)).or_default() += 1;
        }
        if resp.extensions().get::<AuthFailed>().is_some() {
            s.auth_failures += 1;
        }
    }

    pub(crate) fn activity_dropped(&self) {
        self.activity_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// The metrics in Prometheus's text format.
    pub fn render(&self, out: &mut String) {
        let s = self.series.lock().unwrap_or_else(|e| e.into_inner());
        out.push_str("# HELP scimd_requests_total SCIM requests answered, by tenant (empty: not authenticated), resource type, method and status class.\n");
        out.push_str("# TYPE scimd_requests_total counter\n");
        for (tenant, of_tenant) in &s.requests {
            let tenant = label(tenant);
            for ((resource, method, class), n) in of_tenant {
                let _ = writeln!(
                    out,
                    "scimd_requests_total{{tenant=\"{tenant}\",resource=\"{resource}\",method=\"{method}\",status=\"{class}\"}} {n}"
                );
            }
        }
        out.push_str(
            "# HELP scimd_request_duration_seconds Time from a SCIM request's arrival to its answer's head.\n",
        );
        out.push_str("# TYPE scimd_request_duration_seconds histogram\n");
        for ((resource, method), h) in &s.latency {
            let labels = format!("resource=\"{resource}\",method=\"{method}\"");
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(out, "scimd_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {}", h.counts[i]);
            }
            let _ = writeln!(out, "scimd_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "scimd_request_duration_seconds_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "scimd_request_duration_seconds_count{{{labels}}} {}", h.count);
        }
        out.push_str("# HELP scimd_scim_errors_total SCIM error answers, by status and scimType (empty: none).\n");
        out.push_str("# TYPE scimd_scim_errors_total counter\n");
        for ((status, scim_type), n) in &s.errors {
            let _ = writeln!(out, "scimd_scim_errors_total{{status=\"{status}\",scim_type=\"{scim_type}\"}} {n}");
        }
        out.push_str(
            "# HELP scimd_auth_failures_total SCIM requests refused for a missing, wrong, expired or revoked token.\n",
        );
        out.push_str("# TYPE scimd_auth_failures_total counter\n");
        let _ = writeln!(out, "scimd_auth_failures_total {}", s.auth_failures);
        out.push_str("# HELP scimd_activity_dropped_total Activity log records dropped because the database fell behind (the requests were answered).\n");
        out.push_str("# TYPE scimd_activity_dropped_total counter\n");
        let _ = writeln!(out, "scimd_activity_dropped_total {}", self.activity_dropped.load(Ordering::Relaxed));
    }
}

/// One answer being measured: started when the request arrived, recorded when answered
/// (whichever layer answered it).
pub(crate) struct Measuring {
    started: Instant,
    resource: &'static str,
    method: &'static str,
}

impl Measuring {
    pub(crate) fn start(req: &Request, kinds: &[Kind]) -> Measuring {
        Measuring { started: Instant::now(), resource: resource(req.uri().path(), kinds), method: method(req.method()) }
    }

    pub(crate) fn finish(self, metrics: &Metrics, resp: &Response) {
        let tenant = resp.extensions().get::<AnsweredFor>().map(|t| t.0.as_str());
        metrics.record(tenant, self.resource, self.method, resp, self.started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    #[test]
    fn the_text_format_counts_what_was_recorded() {
        let m = Metrics::default();
        let mut ok = StatusCode::CREATED.into_response();
        ok.extensions_mut().insert(AnsweredFor("acme".into()));
        m.record(Some("acme"), "User", "POST", &ok, 0.002);
        let mut dup = StatusCode::CONFLICT.into_response();
        dup.extensions_mut().insert(ErrorInfo { scim_type: Some("uniqueness"), detail: String::new() });
        m.record(Some("acme"), "User", "POST", &dup, 0.0007);
        let mut denied = StatusCode::UNAUTHORIZED.into_response();
        denied.extensions_mut().insert(AuthFailed);
        m.record(None, "Group", "GET", &denied, 0.0001);
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains("scimd_requests_total{tenant=\"acme\",resource=\"User\",method=\"POST\",status=\"2xx\"} 1\n")
        );
        assert!(
            out.contains("scimd_requests_total{tenant=\"acme\",resource=\"User\",method=\"POST\",status=\"4xx\"} 1\n")
        );
        assert!(out.contains("scimd_requests_total{tenant=\"\",resource=\"Group\",method=\"GET\",status=\"4xx\"} 1\n"));
        // 0.0007 s and 0.002 s: one in the 1 ms bucket, both in the 2.5 ms one.
        assert!(
            out.contains("scimd_request_duration_seconds_bucket{resource=\"User\",method=\"POST\",le=\"0.001\"} 1\n")
        );
        assert!(
            out.contains("scimd_request_duration_seconds_bucket{resource=\"User\",method=\"POST\",le=\"0.0025\"} 2\n")
        );
        assert!(out.contains("scimd_request_duration_seconds_count{resource=\"User\",method=\"POST\"} 2\n"));
        assert!(out.contains("scimd_scim_errors_total{status=\"409\",scim_type=\"uniqueness\"} 1\n"));
        assert!(out.contains("scimd_scim_errors_total{status=\"401\",scim_type=\"\"} 1\n"));
        assert!(out.contains("scimd_auth_failures_total 1\n"));
        assert_eq!(label("a\"b\\c"), "a\\\"b\\\\c");
    }
}
