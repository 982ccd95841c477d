//! The results as a table and as JSON.

use crate::Args;
use crate::scenarios::Outcome;
use serde_json::{Value, json};

pub fn print_table(args: &Args, results: &[Outcome]) {
    println!("# {} ({})", args.label, args.url);
    println!(
        "{:<22} {:>7} {:>9} {:>11} {:>9} {:>9} {:>9} {:>7} {:>8} {:>9}",
        "scenario", "clients", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "errors", "non-2xx", "peak RSS"
    );
    for r in results {
        let rss = r.peak_rss.map(|b| format!("{:.1} MB", b as f64 / 1e6)).unwrap_or_else(|| "-".into());
        println!(
            "{:<22} {:>7} {:>9} {:>11.1} {:>9.2} {:>9.2} {:>9.2} {:>7} {:>8} {:>9}",
            r.name,
            r.clients,
            r.requests,
            r.rps(),
            r.percentile(0.5),
            r.percentile(0.9),
            r.percentile(0.99),
            r.errors,
            r.non_2xx,
            rss
        );
    }
}

pub fn to_json(args: &Args, results: &[Outcome]) -> Value {
    json!({
        "label": args.label,
        "url": args.url,
        "users": args.users,
        "groups": args.groups,
        "duration_seconds": args.duration,
        "concurrency": args.concurrency,
        "runs": args.runs,
        "results": results.iter().map(|r| json!({
            "scenario": r.name,
            "clients": r.clients,
            "requests": r.requests,
            "seconds": r.seconds,
            "rps": r.rps(),
            "p50_ms": r.percentile(0.5),
            "p90_ms": r.percentile(0.9),
            "p99_ms": r.percentile(0.99),
            "errors": r.errors,
            "non_2xx": r.non_2xx,
            "peak_rss_bytes": r.peak_rss,
        })).collect::<Vec<_>>(),
    })
}
