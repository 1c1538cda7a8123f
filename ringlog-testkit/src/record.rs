//! Line records for raw logs (what every benchmark contender and the demo write), and the check
//! of a log file that holds them.
//!
//! Record `seq` of producer `id` is a pure function of `(id, seq)` and the size spec:
//! `p<id:3> <seq:10> ` (16 bytes), then filler bytes that depend on `id` and the position,
//! then one `\n`; exactly `len` bytes in all, newline included. Every contender writes these
//! same bytes, so the log files of all contenders are comparable, and the verifier can rebuild
//! each record and compare it byte for byte: a torn or interleaved record changes the length or
//! mixes two producers' filler phases, a lost one leaves a gap, a repeated one runs backwards.
//!
//! Building a record costs O(1) (only the sequence digits and the newline move), so the
//! producers' timing measures the write call, not the record's construction. This module does
//! no timing and no I/O except reading the log in [`verify`].

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

/// Bytes of the `p<id> <seq> ` prefix.
pub const PREFIX_LEN: usize = 16;
/// Smallest record: the prefix, one filler byte and the newline.
pub const MIN_SIZE: usize = PREFIX_LEN + 2;
/// Largest producer id the prefix can hold.
pub const MAX_ID: u32 = 999;

const ALNUM: &[u8; 62] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// How long each record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SizeSpec {
    /// Every record this many bytes, newline included.
    Fixed(usize),
    /// Mostly 40..300 bytes, 1 in 200 between 4 and 16 KiB, 1 in 5000 between 64 and 128 KiB
    /// (mean about 240 bytes), drawn from a hash of `(id, seq)`: the demo's mix.
    Mixed,
}

impl SizeSpec {
    /// Parses `64`, `4K`, `64KiB`, `mixed`.
    pub fn parse(s: &str) -> Result<SizeSpec, String> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("mixed") {
            return Ok(SizeSpec::Mixed);
        }
        let t = t
            .trim_end_matches(['B', 'b'])
            .trim_end_matches('i')
            .trim_end();
        let n = ringlog_core::size::parse_size(t).map_err(|e| e.to_string())?;
        let n = usize::try_from(n).map_err(|_| format!("record size {s:?} is too large"))?;
        if n < MIN_SIZE {
            return Err(format!(
                "record size {s:?} is too small: records carry a {PREFIX_LEN}-byte producer/sequence \
                 prefix, so use at least {MIN_SIZE} bytes"
            ));
        }
        Ok(SizeSpec::Fixed(n))
    }

    /// The argument form (`4096`, `mixed`), as [`SizeSpec::parse`] reads it back.
    pub fn arg(&self) -> String {
        match self {
            SizeSpec::Fixed(n) => n.to_string(),
            SizeSpec::Mixed => "mixed".to_owned(),
        }
    }

    /// A short label for tables: `64 B`, `4 KiB`, `mixed`.
    pub fn label(&self) -> String {
        match *self {
            SizeSpec::Fixed(n) if n >= 1024 && n % 1024 == 0 => format!("{} KiB", n / 1024),
            SizeSpec::Fixed(n) => format!("{n} B"),
            SizeSpec::Mixed => "mixed".to_owned(),
        }
    }

    /// Length of record `seq` of producer `id`.
    #[inline]
    pub fn len(&self, id: u32, seq: u64) -> usize {
        match *self {
            SizeSpec::Fixed(n) => n,
            SizeSpec::Mixed => {
                let h = mix((u64::from(id) * 0x9e37_79b9_7f4a_7c15) ^ seq);
                (match h % 5000 {
                    0 => 65536 + (h >> 20) % 65536,
                    1..=25 => 4096 + (h >> 20) % 12288,
                    _ => 40 + (h >> 20) % 260,
                }) as usize
            }
        }
    }

    /// Largest record this spec produces.
    pub fn max_len(&self) -> usize {
        match *self {
            SizeSpec::Fixed(n) => n,
            SizeSpec::Mixed => 131072,
        }
    }

    /// Mean record length (exact for the mixed distribution's three bands).
    pub fn mean_len(&self) -> f64 {
        match *self {
            SizeSpec::Fixed(n) => n as f64,
            SizeSpec::Mixed => (98303.5 + 25.0 * 10239.5 + 4974.0 * 169.5) / 5000.0,
        }
    }

    /// Total bytes of records `0..records` of producers `0..producers`.
    pub fn total_bytes(&self, producers: u32, records: u64) -> u64 {
        match *self {
            SizeSpec::Fixed(n) => n as u64 * records * u64::from(producers),
            SizeSpec::Mixed => (0..producers)
                .map(|id| (0..records).map(|s| self.len(id, s) as u64).sum::<u64>())
                .sum(),
        }
    }
}

#[inline]
pub(crate) fn mix(mut x: u64) -> u64 {
    // splitmix64's finaliser.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[inline]
fn filler(id: u32, i: usize) -> u8 {
    // 7 is coprime with 62: producers below 62 get distinct phases, so a line spliced from two
    // producers' records never matches either.
    ALNUM[(id as usize * 7 + i) % ALNUM.len()]
}

#[inline]
fn put_digits(out: &mut [u8], mut v: u64) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Adds one to the decimal number in `digits`; false if it overflowed (all nines: the caller
/// rewrites them).
#[inline]
fn increment_digits(digits: &mut [u8]) -> bool {
    for d in digits.iter_mut().rev() {
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            return true;
        }
    }
    false
}

/// Builds the records of one producer in place, each in O(1).
#[derive(Debug, Clone)]
pub struct RecordBuf {
    id: u32,
    size: SizeSpec,
    buf: Vec<u8>,
    last_len: usize,
    last_seq: u64,
}

impl RecordBuf {
    /// The record builder of producer `id`.
    ///
    /// # Panics
    /// If `id` exceeds [`MAX_ID`].
    pub fn new(id: u32, size: SizeSpec) -> RecordBuf {
        assert!(
            id <= MAX_ID,
            "producer id {id} does not fit the record prefix"
        );
        let mut buf: Vec<u8> = (0..size.max_len()).map(|i| filler(id, i)).collect();
        buf[0] = b'p';
        put_digits(&mut buf[1..4], u64::from(id));
        buf[4] = b' ';
        buf[15] = b' ';
        RecordBuf {
            id,
            size,
            buf,
            last_len: 0,
            last_seq: 0,
        }
    }

    /// Record `seq`, newline included. Consecutive calls (`seq` one more than the last) bump
    /// the decimal digits in place, usually one byte, instead of rewriting all ten.
    #[inline]
    pub fn make(&mut self, seq: u64) -> &[u8] {
        let len = self.size.len(self.id, seq);
        if self.last_len > 0 {
            self.buf[self.last_len - 1] = filler(self.id, self.last_len - 1);
        }
        let consecutive = self.last_len > 0 && self.last_seq.wrapping_add(1) == seq;
        if !(consecutive && increment_digits(&mut self.buf[5..15])) {
            put_digits(&mut self.buf[5..15], seq);
        }
        self.last_seq = seq;
        self.buf[len - 1] = b'\n';
        self.last_len = len;
        &self.buf[..len]
    }
}

/// What [`verify`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Lines read.
    pub lines: u64,
    /// Records found whole and in their producer's order.
    pub good: u64,
    /// Bytes of those records.
    pub bytes: u64,
    /// Lines that are not exactly one record of this run (torn, interleaved, foreign, or a
    /// notice line such as a drop report).
    pub bad: u64,
    /// Records repeated, or seen after a later record of the same producer.
    pub out_of_order: u64,
    /// Records expected but not found in order.
    pub missing: u64,
    /// The first problem, for the error message.
    pub first_problem: Option<String>,
}

impl Verdict {
    /// Every record exactly once, untorn, in order per producer, and nothing else.
    pub fn is_perfect(&self) -> bool {
        self.bad == 0 && self.out_of_order == 0 && self.missing == 0
    }

    /// One line for error messages.
    pub fn summary(&self) -> String {
        format!(
            "{} lines: {} records intact and in order, {} torn/foreign lines, {} out of order or \
             repeated, {} missing; first problem: {}",
            self.lines,
            self.good,
            self.bad,
            self.out_of_order,
            self.missing,
            self.first_problem.as_deref().unwrap_or("none")
        )
    }

    fn problem(&mut self, what: impl FnOnce() -> String) {
        if self.first_problem.is_none() {
            self.first_problem = Some(what());
        }
    }
}

fn parse_prefix(line: &[u8]) -> Option<(u32, u64)> {
    if line.len() < PREFIX_LEN || line[0] != b'p' || line[4] != b' ' || line[15] != b' ' {
        return None;
    }
    let digits = |s: &[u8]| {
        s.iter().try_fold(0u64, |acc, &b| {
            b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
        })
    };
    Some((digits(&line[1..4])? as u32, digits(&line[5..15])?))
}

fn show(line: &[u8]) -> String {
    let cut = &line[..line.len().min(60)];
    format!(
        "{:?}{} ({} bytes)",
        String::from_utf8_lossy(cut),
        if line.len() > 60 { "..." } else { "" },
        line.len()
    )
}

/// Checks that `path` holds exactly records `0..per_producer` of each producer
/// `0..producers`, each whole, in its producer's order, and nothing else.
pub fn verify(
    path: &Path,
    producers: u32,
    per_producer: u64,
    size: SizeSpec,
) -> io::Result<Verdict> {
    verify_from(path, producers, 0, per_producer, size)
}

/// Like [`verify`], for records `first..first + per_producer` of each producer.
pub fn verify_from(
    path: &Path,
    producers: u32,
    first: u64,
    per_producer: u64,
    size: SizeSpec,
) -> io::Result<Verdict> {
    let end = first + per_producer;
    let mut bufs: Vec<RecordBuf> = (0..producers).map(|id| RecordBuf::new(id, size)).collect();
    let mut next = vec![first; producers as usize];
    let mut v = Verdict::default();
    let mut reader = BufReader::with_capacity(4 << 20, File::open(path)?);
    let mut line = Vec::with_capacity(size.max_len() + 1);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        v.lines += 1;
        let at = v.lines;
        let Some((id, seq)) =
            parse_prefix(&line).filter(|&(id, seq)| id < producers && (first..end).contains(&seq))
        else {
            v.bad += 1;
            v.problem(|| format!("line {at} is not a record of this run: {}", show(&line)));
            continue;
        };
        if line != bufs[id as usize].make(seq) {
            v.bad += 1;
            v.problem(|| {
                format!(
                    "line {at} is torn or interleaved (producer {id} record {seq}): {}",
                    show(&line)
                )
            });
            continue;
        }
        let n = &mut next[id as usize];
        if seq != *n {
            v.out_of_order += 1;
            let expected = *n;
            v.problem(|| {
                format!("line {at}: producer {id} record {seq} where record {expected} was due")
            });
        } else {
            v.good += 1;
            v.bytes += line.len() as u64;
        }
        *n = (*n).max(seq + 1);
    }
    v.missing = (per_producer * u64::from(producers)).saturating_sub(v.good + v.out_of_order);
    if v.missing > 0 {
        let short: Vec<String> = next
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n < end)
            .take(4)
            .map(|(id, &n)| format!("producer {id} stops at {n} of {first}..{end}"))
            .collect();
        v.problem(|| format!("records missing: {}", short.join(", ")));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn records_have_their_length_prefix_and_one_newline() {
        for size in [SizeSpec::Fixed(18), SizeSpec::Fixed(64), SizeSpec::Mixed] {
            let mut b = RecordBuf::new(7, size);
            for seq in [0u64, 1, 2, 99, 12345, 9_999_999_999] {
                let len = size.len(7, seq);
                let r = b.make(seq).to_vec();
                assert_eq!(r.len(), len);
                assert_eq!(r.iter().filter(|&&c| c == b'\n').count(), 1);
                assert_eq!(r.last(), Some(&b'\n'));
                assert_eq!(parse_prefix(&r), Some((7, seq)));
                let mut fresh = RecordBuf::new(7, size);
                assert_eq!(fresh.make(seq), &r[..], "independent of what came before");
            }
        }
    }

    #[test]
    fn consecutive_records_match_fresh_ones_across_carries() {
        let mut b = RecordBuf::new(3, SizeSpec::Fixed(40));
        for start in [0u64, 95, 99_995, 9_999_999_990] {
            for seq in start..start + 10 {
                let r = b.make(seq).to_vec();
                assert_eq!(parse_prefix(&r), Some((3, seq)), "{seq}");
                assert_eq!(RecordBuf::new(3, SizeSpec::Fixed(40)).make(seq), &r[..]);
            }
        }
    }

    #[test]
    fn mixed_sizes_match_their_mean() {
        let s = SizeSpec::Mixed;
        let n = 200_000u64;
        let mean = (0..n).map(|q| s.len(1, q) as f64).sum::<f64>() / n as f64;
        assert!((mean - s.mean_len()).abs() < 0.1 * s.mean_len(), "{mean}");
        assert_eq!(
            s.total_bytes(2, 10),
            (0..2)
                .map(|id| (0..10).map(|q| s.len(id, q) as u64).sum::<u64>())
                .sum::<u64>()
        );
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(SizeSpec::parse("64"), Ok(SizeSpec::Fixed(64)));
        assert_eq!(SizeSpec::parse("4K"), Ok(SizeSpec::Fixed(4096)));
        assert_eq!(SizeSpec::parse("64KiB"), Ok(SizeSpec::Fixed(65536)));
        assert_eq!(SizeSpec::parse("Mixed"), Ok(SizeSpec::Mixed));
        assert!(SizeSpec::parse("8").is_err());
        assert_eq!(SizeSpec::Fixed(4096).label(), "4 KiB");
    }

    #[test]
    fn verify_accepts_interleaved_producers_and_catches_faults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let size = SizeSpec::Fixed(40);
        let (mut a, mut b) = (RecordBuf::new(0, size), RecordBuf::new(1, size));
        let mut f = File::create(&path).unwrap();
        for seq in 0..3 {
            f.write_all(a.make(seq)).unwrap();
            f.write_all(b.make(seq)).unwrap();
        }
        drop(f);
        let v = verify(&path, 2, 3, size).unwrap();
        assert!(v.is_perfect(), "{}", v.summary());
        assert_eq!(v.good, 6);

        // Torn: producer 0's record with producer 1's tail; a repeat; a missing record.
        let mut f = File::create(&path).unwrap();
        let r0 = a.make(0).to_vec();
        let r1 = b.make(0).to_vec();
        f.write_all(&r0[..20]).unwrap();
        f.write_all(&r1[20..]).unwrap();
        f.write_all(a.make(1)).unwrap();
        f.write_all(a.make(1)).unwrap();
        drop(f);
        let v = verify(&path, 2, 2, size).unwrap();
        assert!(!v.is_perfect());
        assert_eq!(v.bad, 1);
        assert_eq!(v.out_of_order, 2, "record 1 before 0, then repeated");
        assert!(v.first_problem.unwrap().contains("torn"));
    }

    #[test]
    fn verify_from_checks_a_later_range() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let size = SizeSpec::Fixed(30);
        let mut a = RecordBuf::new(0, size);
        let mut f = File::create(&path).unwrap();
        for seq in 5..8 {
            f.write_all(a.make(seq)).unwrap();
        }
        drop(f);
        assert!(verify_from(&path, 1, 5, 3, size).unwrap().is_perfect());
        assert!(!verify(&path, 1, 3, size).unwrap().is_perfect());
    }
}
