include!("../../build/test-cfg.rs");

fn main() {
    test_cfg();
}
