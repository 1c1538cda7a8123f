//! The test producer with fault injection compiled in, for `--fault` (see
//! `ringlog_tests::armed_bin`): built only by the fault tests, under its own name.

fn main() {
    ringlog_tests::producer::main()
}
