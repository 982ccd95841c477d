// Included by the build scripts of the packages whose tests need PostgreSQL: with
// `SCIMD_TEST_POSTGRES_URL` set at build time, `cfg(scimd_postgres)` is on and those tests
// run; without it they are compiled as ignored, so the test harness reports them as
// ignored instead of counting them as passed.
fn postgres_tests() {
    println!("cargo::rustc-check-cfg=cfg(scimd_postgres)");
    println!("cargo::rerun-if-env-changed=SCIMD_TEST_POSTGRES_URL");
    if std::env::var_os("SCIMD_TEST_POSTGRES_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=scimd_postgres");
    }
}
