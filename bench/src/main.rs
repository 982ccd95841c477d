//! `scimd-bench`: a load tool for any SCIM 2.0 server.
//!
//! It seeds users and groups, then runs each scenario for a fixed time with a fixed number
//! of clients, and reports requests per second, latency percentiles, errors, non-2xx
//! answers and (given the server's pid) its peak resident memory. Every loop is bounded in
//! count and in time, and only loopback targets are accepted unless `--allow-remote`.

mod http;
mod report;
mod scenarios;

use anyhow::{Context, Result, bail};
use clap::Parser;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser, Debug, Clone)]
#[command(name = "scimd-bench", about = "Load-test a SCIM 2.0 server")]
pub struct Args {
    /// The SCIM base URL, e.g. http://127.0.0.1:8080/scim/v2
    #[arg(long)]
    pub url: String,
    /// Bearer token
    #[arg(long, env = "SCIM_BENCH_TOKEN")]
    pub token: String,
    /// Users to seed
    #[arg(long, default_value_t = 10_000)]
    pub users: usize,
    /// Concurrent clients while seeding (not measured)
    #[arg(long, default_value_t = 8)]
    pub seed_concurrency: usize,
    /// Where the seeded population is kept: written after seeding, and read instead of
    /// seeding when it exists (to run the scenarios again against the same data)
    #[arg(long)]
    pub seed_file: Option<String>,
    /// Further tenants of the same server, one per line: `BASE_URL TOKEN`. Each is seeded
    /// with --tenant-users users, and the tenant_* scenarios send each request to a random
    /// one of them.
    #[arg(long)]
    pub tenants_file: Option<String>,
    /// Users to seed in each tenant of --tenants-file
    #[arg(long, default_value_t = 100)]
    pub tenant_users: usize,
    /// Groups to seed
    #[arg(long, default_value_t = 100)]
    pub groups: usize,
    /// Members given to each seeded group
    #[arg(long, default_value_t = 10)]
    pub members_per_group: usize,
    /// Seconds each scenario runs
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Concurrent clients for the scenarios
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Scenarios to run, comma-separated (get_user, filter, list, get_group, create_seq,
    /// create_concurrent, patch_user, add_member, create_group, members, cursor_first,
    /// cursor_deep; with --tenants-file also tenant_get_user and tenant_filter)
    #[arg(long, default_value = "get_user,filter,list,get_group,create_seq,create_concurrent,patch_user,members")]
    pub scenarios: String,
    /// How deep in the list of users the page of `cursor_deep` starts
    #[arg(long, default_value_t = 100_000)]
    pub cursor_depth: usize,
    /// Group sizes at which the `members` scenario times single-member adds
    #[arg(long, default_value = "100,1000,10000,100000")]
    pub member_sizes: String,
    /// Single-member adds timed at each size
    #[arg(long, default_value_t = 50)]
    pub member_samples: usize,
    /// Repeat every scenario this many times; the report gives the median run
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// The server's pid, to sample its resident memory
    #[arg(long)]
    pub pid: Option<u32>,
    /// Write the results as JSON here
    #[arg(long)]
    pub json: Option<String>,
    /// A label for the server in the report
    #[arg(long, default_value = "server")]
    pub label: String,
    /// Reuse users already seeded by an earlier run with the same --prefix
    #[arg(long, default_value = "bench")]
    pub prefix: String,
    /// Upper bound on requests in one scenario run
    #[arg(long, default_value_t = 5_000_000)]
    pub max_requests: u64,
    /// Send at most this many requests per second (an open-loop pace: request n is not sent
    /// before n/rate seconds into the run); 0 sends as fast as the clients can
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Per-request timeout in seconds
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
    /// Allow a non-loopback target
    #[arg(long)]
    pub allow_remote: bool,
    /// Exit with status 1 if any request failed or answered outside 2xx (for smoke tests)
    #[arg(long)]
    pub fail_on_errors: bool,
}

impl Args {
    pub fn run_time(&self) -> Duration {
        Duration::from_secs_f64(self.duration.clamp(0.1, 3600.0))
    }
}

/// The tool runs on one thread: it uses at most one core, and the rest of the machine is
/// left to the server it measures.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let mut target = http::Target::new(&args.url, &args.token, Duration::from_secs_f64(args.timeout))?;
    if let Some(path) = &args.tenants_file {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let mut parts = line.split_whitespace();
            let (Some(url), Some(token), None) = (parts.next(), parts.next(), parts.next()) else {
                bail!("{path}:{}: expected `BASE_URL TOKEN`", n + 1);
            };
            target.add_endpoint(url, token).with_context(|| format!("{path}:{}", n + 1))?;
        }
    }
    let target = Arc::new(target);
    // Only 127.0.0.0/8 and ::1, unless told otherwise.
    if !target.is_loopback() && !args.allow_remote {
        bail!("refusing to load {}: not a loopback address (pass --allow-remote to override)", args.url);
    }
    let results = scenarios::run_all(target, &args).await?;
    report::print_table(&args, &results);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report::to_json(&args, &results))?)
            .with_context(|| format!("writing {path}"))?;
    }
    let failed = results.iter().any(|r| r.errors > 0 || r.non_2xx > 0);
    if failed {
        eprintln!("some requests failed or were refused (see the errors and non-2xx columns)");
        if args.fail_on_errors {
            std::process::exit(1);
        }
    }
    Ok(())
}
