//! Byte sizes as people type them on command lines (`4096`, `64K`, `1M`, `1G`): the one parser
//! every size option of every ringlog binary uses, so `--capacity 1M` means the same to
//! `ringlog-drain` and `ringlog-pipe`. Parsing only; no I/O.

use std::fmt;

/// A size that does not parse (or does not fit 64 bits). Its message says what is accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SizeError {
    /// What was given, trimmed.
    pub input: String,
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid size {:?}: use a number with an optional K, M or G suffix",
            self.input
        )
    }
}

impl std::error::Error for SizeError {}

/// Parses a size: digits with an optional binary suffix `K`, `M` or `G` (either case), so
/// `64K` is 65,536 bytes.
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    let s = s.trim();
    let (digits, shift) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 10),
        Some((i, 'm' | 'M')) => (&s[..i], 20),
        Some((i, 'g' | 'G')) => (&s[..i], 30),
        _ => (s, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| SizeError {
            input: s.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        let e = parse_size(" 12Q ").unwrap_err();
        assert_eq!(e.input, "12Q");
        assert!(e.to_string().contains("K, M or G"), "{e}");
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999G").is_err());
    }
}
