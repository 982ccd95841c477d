// Included by the build scripts of packages whose tests need something of the machine:
// they are compiled as ignored (so the test harness reports them as such, not as passed)
// unless it is there when the tests are built.
// - `cfg(scimd_postgres)`: `SCIMD_TEST_POSTGRES_URL` names a PostgreSQL database.
// - `cfg(scimd_replica)`: `SCIMD_TEST_POSTGRES_REPLICA_URL` names a hot standby of that
//   database (streaming replication), whose replay the tests may pause and resume.
// - `cfg(scimd_root)`: the build runs as root, so tests may mount a small tmpfs.
fn test_cfg() {
    println!("cargo::rustc-check-cfg=cfg(scimd_postgres)");
    println!("cargo::rustc-check-cfg=cfg(scimd_replica)");
    println!("cargo::rustc-check-cfg=cfg(scimd_root)");
    for (var, cfg) in [("SCIMD_TEST_POSTGRES_URL", "scimd_postgres"), ("SCIMD_TEST_POSTGRES_REPLICA_URL", "scimd_replica")] {
        println!("cargo::rerun-if-env-changed={var}");
        if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
    // The effective uid, from the second field of the `Uid:` line.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|ids| ids.split_whitespace().nth(1));
    if euid == Some("0") {
        println!("cargo::rustc-cfg=scimd_root");
    }
}
