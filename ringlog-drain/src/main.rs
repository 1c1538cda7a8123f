//! The `ringlog-drain` binary; see `ringlog_drain::cli`.

fn main() -> std::process::ExitCode {
    ringlog_drain::cli::main()
}
