//! `ringlog-drain` with fault injection compiled in (`RINGLOG_FAULT`; see
//! `ringlog_tests::armed_bin`): built only by the fault tests, under its own name, so the
//! `ringlog-drain` beside it is the one users build.

fn main() -> std::process::ExitCode {
    ringlog_drain::cli::main()
}
