//! The test producer (see `ringlog_tests::producer`).

fn main() {
    ringlog_tests::producer::main()
}
