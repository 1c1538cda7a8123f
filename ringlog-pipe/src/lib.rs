//! `ringlog-pipe`: every line of standard input becomes one record. Its own crate, so services
//! that link `ringlog-writer` do not compile its command line (clap). Input is read in large
//! chunks (one `read` per MiB, not per line); a line longer than the ring's max record size is
//! reported with its line number and skipped without buffering it whole.

use ringlog_writer::{FullPolicy, Level, WriteError, Writer};
use std::io::{self, BufRead};

/// What a pipe run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PipeReport {
    /// Lines written as records.
    pub written: u64,
    /// Lines dropped by the full policy.
    pub dropped: u64,
    /// Lines longer than the max record size, skipped.
    pub too_long: u64,
}

/// Copies lines from `input` into `writer` at `level`, one record each, without the trailing
/// newline. `on_too_long(line_number, len_so_far)` is told about each skipped line.
pub fn pipe_lines(
    writer: &Writer,
    level: Level,
    input: impl io::Read,
    mut on_too_long: impl FnMut(u64, usize),
) -> io::Result<PipeReport> {
    let max = writer.max_record() as usize;
    let mut input = io::BufReader::with_capacity(1 << 20, input);
    let mut line = Vec::with_capacity(64 << 10);
    let mut skipping = false;
    let mut report = PipeReport::default();
    let mut line_no = 1u64;
    let emit = |line: &[u8], report: &mut PipeReport| -> io::Result<()> {
        match writer.write_record(level, "", line) {
            Ok(()) => report.written += 1,
            Err(WriteError::Dropped) => report.dropped += 1,
            Err(e) => return Err(io::Error::other(e)),
        }
        Ok(())
    };
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            if !line.is_empty() && !skipping {
                emit(&line, &mut report)?;
            }
            return Ok(report);
        }
        let (piece, end_of_line) = match memchr(chunk) {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        if !skipping {
            if line.len() + piece.len() > max {
                on_too_long(line_no, line.len() + piece.len());
                report.too_long += 1;
                skipping = true;
                line.clear();
            } else if end_of_line.is_some() && line.is_empty() {
                // The whole line is in the buffer: write it straight from there.
                emit(piece, &mut report)?;
            } else {
                line.extend_from_slice(piece);
                if end_of_line.is_some() {
                    emit(&line, &mut report)?;
                    line.clear();
                }
            }
        }
        let consumed = end_of_line.unwrap_or(chunk.len());
        input.consume(consumed);
        if end_of_line.is_some() {
            skipping = false;
            line_no += 1;
        }
    }
}

fn memchr(haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == b'\n')
}

/// Parses a `--policy` value: `block`, `drop`, or `block-for=MS`.
pub fn parse_policy(s: &str) -> Result<FullPolicy, String> {
    match s {
        "block" => Ok(FullPolicy::Block),
        "drop" => Ok(FullPolicy::Drop),
        _ => match s.strip_prefix("block-for=").map(str::parse::<u64>) {
            Some(Ok(ms)) => Ok(FullPolicy::BlockFor(std::time::Duration::from_millis(ms))),
            _ => Err(format!(
                "unknown full policy {s:?}: use block, drop or block-for=MS"
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse() {
        assert_eq!(parse_policy("drop"), Ok(FullPolicy::Drop));
        assert_eq!(
            parse_policy("block-for=250"),
            Ok(FullPolicy::BlockFor(std::time::Duration::from_millis(250)))
        );
        assert!(parse_policy("sometimes")
            .unwrap_err()
            .contains("block, drop"));
    }
}
