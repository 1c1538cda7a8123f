//! Output formats: how one record (header fields + payload) becomes bytes in the log.
//! `raw`: the message verbatim plus a newline if it lacks one. `text`: RFC 3339 UTC time,
//! level, pid, target, message, with newlines, control characters and the Unicode line
//! separators escaped so a message can never forge a line. `json`: one object per line, strings
//! escaped as serde_json escapes them, and the Unicode line separators too.
//! Pure functions over buffers; no I/O.

use ringlog_core::{Level, RecordMeta};

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// The message bytes as written, one record per line.
    #[default]
    Raw,
    /// `2026-01-02T03:04:05.123456789Z INFO pid=42 target: message`.
    Text,
    /// `{"ts":"...","level":"INFO","pid":42,"tid":43,"target":"...","msg":"..."}`.
    Json,
}

/// Formats records, caching the date-time prefix of the current second.
#[derive(Debug, Default)]
pub struct Formatter {
    format: Format,
    /// Set when forwarding to syslog: every record becomes an RFC 5424 message instead.
    syslog: Option<crate::syslog::MessageFormat>,
    cached_second: u64,
    cached_prefix: [u8; 19],
}

impl Formatter {
    /// A formatter for `format`.
    pub fn new(format: Format) -> Formatter {
        Formatter {
            format,
            syslog: None,
            cached_second: u64::MAX,
            cached_prefix: [0; 19],
        }
    }

    /// A formatter of octet-counted RFC 5424 messages from app `app_name`, for syslog outputs.
    pub fn syslog(app_name: &str) -> Formatter {
        Formatter {
            syslog: Some(crate::syslog::MessageFormat::new(app_name)),
            ..Formatter::new(Format::Raw)
        }
    }

    /// True when records are written as their bare message bytes (the drain's fast path).
    pub fn is_raw(&self) -> bool {
        self.format == Format::Raw && self.syslog.is_none()
    }

    /// Appends one record to `out`.
    pub fn record(&mut self, out: &mut Vec<u8>, meta: &RecordMeta, target: &[u8], message: &[u8]) {
        if let Some(syslog) = self.syslog.take() {
            let mut ts = Vec::with_capacity(32);
            self.timestamp(&mut ts, meta.timestamp_ns);
            syslog.record(out, meta, target, message, &ts);
            self.syslog = Some(syslog);
            return;
        }
        match self.format {
            Format::Raw => {
                out.extend_from_slice(message);
                if message.last() != Some(&b'\n') {
                    out.push(b'\n');
                }
            }
            Format::Text => {
                self.timestamp(out, meta.timestamp_ns);
                out.push(b' ');
                out.extend_from_slice(level_name(meta.level).as_bytes());
                out.extend_from_slice(b" pid=");
                out.extend_from_slice(itoa::Buffer::new().format(meta.pid).as_bytes());
                out.push(b' ');
                if !target.is_empty() {
                    escape_text(out, target);
                    out.extend_from_slice(b": ");
                }
                escape_text(out, strip_newline(message));
                out.push(b'\n');
            }
            Format::Json => {
                out.extend_from_slice(b"{\"ts\":\"");
                self.timestamp(out, meta.timestamp_ns);
                out.extend_from_slice(b"\",\"level\":\"");
                out.extend_from_slice(level_name(meta.level).as_bytes());
                out.extend_from_slice(b"\",\"pid\":");
                out.extend_from_slice(itoa::Buffer::new().format(meta.pid).as_bytes());
                out.extend_from_slice(b",\"tid\":");
                out.extend_from_slice(itoa::Buffer::new().format(meta.tid).as_bytes());
                if !target.is_empty() {
                    out.extend_from_slice(b",\"target\":");
                    json_string(out, target);
                }
                out.extend_from_slice(b",\"msg\":");
                json_string(out, strip_newline(message));
                out.extend_from_slice(b"}\n");
            }
        }
    }

    /// Appends a line the drain itself reports in-band (skipped bytes, drops).
    pub fn notice(&mut self, out: &mut Vec<u8>, now_ns: u64, text: &str) {
        if self.syslog.is_some() {
            let meta = RecordMeta {
                timestamp_ns: now_ns,
                pid: std::process::id(),
                level: Level::Warn,
                ..Default::default()
            };
            return self.record(out, &meta, b"ringlog", text.as_bytes());
        }
        match self.format {
            Format::Raw => {
                out.extend_from_slice(text.as_bytes());
                out.push(b'\n');
            }
            Format::Text => {
                self.timestamp(out, now_ns);
                out.extend_from_slice(b" WARN pid=");
                out.extend_from_slice(itoa::Buffer::new().format(std::process::id()).as_bytes());
                out.push(b' ');
                escape_text(out, text.as_bytes());
                out.push(b'\n');
            }
            Format::Json => {
                out.extend_from_slice(b"{\"ts\":\"");
                self.timestamp(out, now_ns);
                out.extend_from_slice(b"\",\"level\":\"WARN\",\"ringlog\":true,\"msg\":");
                json_string(out, text.as_bytes());
                out.extend_from_slice(b"}\n");
            }
        }
    }

    fn timestamp(&mut self, out: &mut Vec<u8>, ns: u64) {
        let second = ns / 1_000_000_000;
        if second != self.cached_second {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(second);
            let s = humantime::format_rfc3339_seconds(t).to_string();
            self.cached_prefix.copy_from_slice(&s.as_bytes()[..19]);
            self.cached_second = second;
        }
        out.extend_from_slice(&self.cached_prefix);
        let mut frac = [b'0'; 11];
        frac[0] = b'.';
        frac[10] = b'Z';
        let mut n = ns % 1_000_000_000;
        for d in frac[1..10].iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        out.extend_from_slice(&frac);
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::None => "-",
        other => other.as_str(),
    }
}

fn strip_newline(message: &[u8]) -> &[u8] {
    message.strip_suffix(b"\n").unwrap_or(message)
}

/// Escapes `\`, control characters, DEL and the Unicode line separators (U+0085, U+2028,
/// U+2029, which Python's `splitlines` and JavaScript treat as line ends) so the bytes stay on
/// one line whoever reads them.
pub fn escape_text(out: &mut Vec<u8>, bytes: &[u8]) {
    escape_with(
        out,
        bytes,
        |w| {
            !any_below(w, 0x20)
                && !any_equal(w, 0x7f)
                && !any_equal(w, b'\\')
                && !any_line_separator_lead(w)
        },
        |b| b < 0x20 || b == 0x7f || b == b'\\',
        |out, b| match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\\' => out.extend_from_slice(b"\\\\"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[(b >> 4) as usize],
                HEX[(b & 15) as usize],
            ]),
        },
    );
}

/// Appends `bytes` as a JSON string: invalid UTF-8 becomes U+FFFD, and `"`, `\` and control
/// characters are escaped exactly as serde_json escapes them.
fn json_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    match std::str::from_utf8(bytes) {
        Ok(text) => json_escape(out, text.as_bytes()),
        Err(_) => json_escape(out, String::from_utf8_lossy(bytes).as_bytes()),
    }
    out.push(b'"');
}

fn json_escape(out: &mut Vec<u8>, text: &[u8]) {
    escape_with(
        out,
        text,
        |w| {
            !any_below(w, 0x20)
                && !any_equal(w, b'"')
                && !any_equal(w, b'\\')
                && !any_line_separator_lead(w)
        },
        |b| b < 0x20 || b == b'"' || b == b'\\',
        |out, b| match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 15) as usize],
            ]),
        },
    );
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `bytes` to `out`, each byte for which `special` holds replaced by what `escape`
/// writes, and each Unicode line separator (see [`line_separator_at`]) by its `\uXXXX` escape
/// (the same in text and JSON). Most log text has nothing to escape, so it is scanned eight
/// bytes at a time: `word_is_clean` says a whole little-endian word has no special byte and no
/// first byte of a separator, and runs of clean bytes are copied in one go.
#[inline(always)]
fn escape_with(
    out: &mut Vec<u8>,
    bytes: &[u8],
    word_is_clean: impl Fn(u64) -> bool,
    special: impl Fn(u8) -> bool,
    escape: impl Fn(&mut Vec<u8>, u8),
) {
    out.reserve(bytes.len());
    let mut run = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + 8) {
            let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            if word_is_clean(word) {
                i += 8;
                continue;
            }
        }
        let end = (i + 8).min(bytes.len());
        // A separator starting in this word may end in the next: `j` can pass `end`.
        let mut j = i.max(run);
        while j < end {
            let b = bytes[j];
            if special(b) {
                out.extend_from_slice(&bytes[run..j]);
                escape(out, b);
                run = j + 1;
            } else if let Some((len, escaped)) = line_separator_at(&bytes[j..]) {
                out.extend_from_slice(&bytes[run..j]);
                out.extend_from_slice(escaped);
                run = j + len;
                j = run;
                continue;
            }
            j += 1;
        }
        i = end.max(run);
    }
    out.extend_from_slice(&bytes[run..]);
}

/// The Unicode line separators some readers split lines at although they are not `\n`: NEL
/// (U+0085), LINE SEPARATOR (U+2028) and PARAGRAPH SEPARATOR (U+2029), as UTF-8, with the
/// escape each is written as.
const LINE_SEPARATORS: [(&[u8], &[u8]); 3] = [
    (b"\xc2\x85", b"\\u0085"),
    (b"\xe2\x80\xa8", b"\\u2028"),
    (b"\xe2\x80\xa9", b"\\u2029"),
];

/// If `bytes` starts with a Unicode line separator: its length and its escape.
#[inline(always)]
fn line_separator_at(bytes: &[u8]) -> Option<(usize, &'static [u8])> {
    if !matches!(bytes.first(), Some(0xc2 | 0xe2)) {
        return None;
    }
    LINE_SEPARATORS
        .iter()
        .find(|(utf8, _)| bytes.starts_with(utf8))
        .map(|(utf8, escaped)| (utf8.len(), *escaped))
}

/// Whether any byte of `w` could start a Unicode line separator (0xC2 or 0xE2).
#[inline(always)]
const fn any_line_separator_lead(w: u64) -> bool {
    any_equal(w, 0xc2) || any_equal(w, 0xe2)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any byte of `w` is below `n` (`n <= 0x80`). The classic borrow trick: exact as to
/// whether any byte is, though not as to which.
#[inline(always)]
const fn any_below(w: u64, n: u8) -> bool {
    w.wrapping_sub(ONES * n as u64) & !w & HIGHS != 0
}

/// Whether any byte of `w` equals `b`.
#[inline(always)]
const fn any_equal(w: u64, b: u8) -> bool {
    any_below(w ^ (ONES * b as u64), 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn meta() -> RecordMeta {
        RecordMeta {
            timestamp_ns: 1_700_000_000_123_456_789,
            pid: 42,
            tid: 43,
            level: Level::Info,
            ..Default::default()
        }
    }

    fn one(format: Format, target: &[u8], msg: &[u8]) -> String {
        let mut out = Vec::new();
        Formatter::new(format).record(&mut out, &meta(), target, msg);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn raw_adds_a_newline_only_when_missing() {
        assert_eq!(one(Format::Raw, b"", b"hello"), "hello\n");
        assert_eq!(one(Format::Raw, b"t", b"hello\n"), "hello\n");
    }

    #[test]
    fn text_has_rfc3339_time_level_pid_target() {
        assert_eq!(
            one(Format::Text, b"app::db", b"connected"),
            "2023-11-14T22:13:20.123456789Z INFO pid=42 app::db: connected\n"
        );
    }

    #[test]
    fn text_cannot_forge_a_line() {
        let line = one(
            Format::Text,
            b"",
            b"ok\n2023-11-14T22:13:20Z ERROR pid=1 forged\x1b[31m\\",
        );
        assert_eq!(line.matches('\n').count(), 1);
        assert!(line.contains("ok\\n2023"));
        assert!(line.contains("\\x1b[31m\\\\"));
    }

    #[test]
    fn json_is_one_valid_object_per_line() {
        let line = one(Format::Json, b"t\"x", b"a\nb\"c\x00\xff");
        assert_eq!(line.matches('\n').count(), 1);
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["msg"], "a\nb\"c\u{0}\u{fffd}");
        assert_eq!(v["target"], "t\"x");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["pid"], 42);
        assert_eq!(v["ts"], "2023-11-14T22:13:20.123456789Z");
    }

    /// The text escaping rule, one byte at a time (what the word-at-a-time scan must equal).
    fn escape_text_bytewise(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if let Some((len, escaped)) = separator_bytewise(&bytes[i..]) {
                out.extend_from_slice(escaped.as_bytes());
                i += len;
                continue;
            }
            match bytes[i] {
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b @ (0..=0x1f | 0x7f) => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
                b => out.push(b),
            }
            i += 1;
        }
        out
    }

    /// U+0085, U+2028, U+2029 at the start of `bytes`, written out independently of the code
    /// under test.
    fn separator_bytewise(bytes: &[u8]) -> Option<(usize, &'static str)> {
        ['\u{85}', '\u{2028}', '\u{2029}']
            .into_iter()
            .find_map(|c| {
                let mut utf8 = [0u8; 4];
                let utf8 = c.encode_utf8(&mut utf8).as_bytes();
                let escaped = match c {
                    '\u{85}' => "\\u0085",
                    '\u{2028}' => "\\u2028",
                    _ => "\\u2029",
                };
                bytes.starts_with(utf8).then_some((utf8.len(), escaped))
            })
    }

    /// Bytes where special ones are common, at every offset within a word, including the
    /// Unicode line separators whole and in pieces.
    fn log_bytes() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            8 => (b' '..=b'~').prop_map(|b| vec![b]),
            2 => (0u8..0x20).prop_map(|b| vec![b]),
            2 => prop::sample::select(vec![b'\\', b'"', 0x7f, 0x80, 0xc3, 0xa9, 0xff, 0xc2, 0x85, 0xe2, 0xa8])
                .prop_map(|b| vec![b]),
            2 => prop::sample::select(vec!["\u{85}", "\u{2028}", "\u{2029}", "\u{2027}", "\u{a0}", "\u{e9}"])
                .prop_map(|s| s.as_bytes().to_vec()),
        ];
        prop::collection::vec(piece, 0..60).prop_map(|pieces| pieces.concat())
    }

    /// serde_json's string, with the Unicode line separators escaped as well.
    fn serde_json_with_separators_escaped(bytes: &[u8]) -> Vec<u8> {
        serde_json::to_string(&String::from_utf8_lossy(bytes))
            .unwrap()
            .replace('\u{85}', "\\u0085")
            .replace('\u{2028}', "\\u2028")
            .replace('\u{2029}', "\\u2029")
            .into_bytes()
    }

    proptest! {
        #[test]
        fn text_escaping_matches_the_bytewise_rule(bytes in log_bytes()) {
            let mut out = Vec::new();
            escape_text(&mut out, &bytes);
            prop_assert_eq!(out, escape_text_bytewise(&bytes));
        }

        #[test]
        fn json_strings_match_serde_json_with_separators_escaped(bytes in log_bytes()) {
            let mut out = Vec::new();
            json_string(&mut out, &bytes);
            prop_assert_eq!(&out, &serde_json_with_separators_escaped(&bytes));
            let back: String = serde_json::from_slice(&out).unwrap();
            prop_assert_eq!(back, String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn unicode_line_separators_are_escaped_in_text_and_json() {
        let msg = "a\u{85}b\u{2028}c\u{2029}d".as_bytes();
        for format in [Format::Text, Format::Json] {
            let line = one(format, b"", msg);
            assert_eq!(line.lines().count(), 1, "{format:?}: {line:?}");
            // What Python's str.splitlines and JavaScript split on, besides \n.
            assert!(
                !line.contains(['\u{85}', '\u{2028}', '\u{2029}']),
                "{format:?}: {line:?}"
            );
            assert!(
                line.contains("a\\u0085b\\u2028c\\u2029d"),
                "{format:?}: {line:?}"
            );
        }
        let json = one(Format::Json, b"", msg);
        let v: serde_json::Value = serde_json::from_str(json.trim_end()).unwrap();
        assert_eq!(v["msg"], "a\u{85}b\u{2028}c\u{2029}d");
    }

    #[test]
    fn notices_follow_the_format() {
        let mut f = Formatter::new(Format::Json);
        let mut out = Vec::new();
        f.notice(&mut out, 0, "ringlog: skipped 64 bytes abandoned by pid 7");
        let v: serde_json::Value = serde_json::from_slice(out.trim_ascii_end()).unwrap();
        assert_eq!(v["ringlog"], true);
        assert_eq!(v["msg"], "ringlog: skipped 64 bytes abandoned by pid 7");
    }
}
