//! Byte sizes as people type them on command lines (`4096`, `64K`, `1M`, `1G`): the one parser
//! every size option of every ringlog binary uses, so `--capacity 1M` means the same to
//! `ringlog-drain` and `ringlog-pipe`. Parsing only; no I/O.

/// Parses a size: digits with an optional binary suffix `K`, `M` or `G` (either case), so
/// `64K` is 65,536 bytes. The error says what is accepted.
pub fn parse_size(s: &str) -> Result<u64, String> {
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
        .ok_or_else(|| {
            format!("invalid size {s:?}: use a number with an optional K, M or G suffix")
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
        assert!(parse_size("12Q").unwrap_err().contains("K, M or G"));
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999G").is_err());
    }
}
