include!("../../build/postgres-tests.rs");

fn main() {
    postgres_tests();
}
