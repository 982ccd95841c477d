include!("../../build/test-cfg.rs");

fn main() {
    // The PostgreSQL migrations are embedded at compile time (`sqlx::migrate!`), and the
    // SQLite ones with `include_str!`; cargo must rebuild when a file is added to or removed
    // from either folder, not only when an embedded file changes.
    println!("cargo:rerun-if-changed=migrations");
    test_cfg();
}
