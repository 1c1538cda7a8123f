//! Record framing: the 32-byte frame header in front of every record's payload, and the
//! encoding of its first word, the one that carries claim/commit state. Pure encoding; no
//! memory access.
//!
//! ```text
//! word 0  len:i32 (frame bytes incl. header, negative while claimed) | kind:u8 | level:u8 | slot:u16
//! word 1  timestamp, ns since the Unix epoch
//! word 2  pid:u32 | tid:u32
//! word 3  payload_len:u32 | target_len:u16 | flags:u16
//! ...     payload: target bytes, then message bytes
//! ```
//!
//! Word 0 is zero in free space (the drain zeroes what it consumes), never zero once a producer
//! has written it (a frame is at least 8 bytes), negative from claim to commit, positive after.
//! Frames start at 8-byte aligned positions; the next frame starts at `align8(len)`.

use crate::layout::align_record;

/// Bit of a record's flags: its timestamp is in [`crate::clock::ticks`], not ns; the drain
/// converts it.
pub const FLAG_TICKS: u16 = 1;

/// Bytes in the frame header before the payload.
pub const FRAME_HEADER_SIZE: usize = 32;

/// What a frame holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A log record.
    Data = 1,
    /// Space to skip: the tail of the region at a wrap, or an aborted claim.
    Padding = 2,
}

/// Severity of a record, ordered like the `log` crate (`Error` most severe).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(u8)]
pub enum Level {
    /// No level given (raw writes, `ringlog-pipe` without `--level`).
    #[default]
    None = 0,
    /// Something failed.
    Error = 1,
    /// Something is wrong but work goes on.
    Warn = 2,
    /// Normal operation.
    Info = 3,
    /// Detail for developers.
    Debug = 4,
    /// Very fine-grained detail.
    Trace = 5,
}

impl Level {
    /// Decodes a level byte; unknown values (a buggy producer) read as `None`.
    pub fn from_u8(v: u8) -> Level {
        match v {
            1 => Level::Error,
            2 => Level::Warn,
            3 => Level::Info,
            4 => Level::Debug,
            5 => Level::Trace,
            _ => Level::None,
        }
    }

    /// Upper-case name, as written by the `text` and `json` formats; empty for `None`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "",
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        }
    }

    /// Parses a level name (case-insensitive), as given on a command line.
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.to_ascii_lowercase().as_str() {
            "none" | "" => Level::None,
            "error" => Level::Error,
            "warn" | "warning" => Level::Warn,
            "info" => Level::Info,
            "debug" => Level::Debug,
            "trace" => Level::Trace,
            _ => return None,
        })
    }
}

/// The decoded first word of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Word0 {
    /// Frame length in bytes including the header, unaligned.
    pub len: u32,
    /// True once the producer has committed (or a padding frame was written).
    pub committed: bool,
    /// Raw kind byte (see [`Kind`]); kept raw so a corrupt value can be reported.
    pub kind: u8,
    /// Raw level byte.
    pub level: u8,
    /// Registry slot of the producer that claimed the frame.
    pub slot: u16,
}

impl Word0 {
    /// Encodes a frame's first word.
    #[inline]
    pub fn encode(len: u32, committed: bool, kind: Kind, level: Level, slot: u16) -> u64 {
        debug_assert!(len > 0 && len <= i32::MAX as u32);
        let signed = if committed { len as i32 } else { -(len as i32) };
        (signed as u32 as u64) | (kind as u64) << 32 | (level as u64) << 40 | (slot as u64) << 48
    }

    /// Decodes a non-zero first word; `None` for zero (nothing written yet) or a zero length.
    #[inline]
    pub fn decode(word: u64) -> Option<Word0> {
        let signed = word as u32 as i32;
        if signed == 0 {
            return None;
        }
        Some(Word0 {
            len: signed.unsigned_abs(),
            committed: signed > 0,
            kind: (word >> 32) as u8,
            level: (word >> 40) as u8,
            slot: (word >> 48) as u16,
        })
    }

    /// Bytes from this frame's start to the next frame's.
    #[inline]
    pub fn span(&self) -> u64 {
        align_record(self.len as u64)
    }
}

/// Word 2: pid and tid.
#[inline]
pub fn encode_ids(pid: u32, tid: u32) -> u64 {
    pid as u64 | (tid as u64) << 32
}

/// Byte offset of word 3 (lengths and flags) in the frame header.
pub const LENGTHS_OFFSET: usize = 24;

/// Word 3: payload and target lengths and flags.
#[inline]
pub fn encode_lengths(payload_len: u32, target_len: u16, flags: u16) -> u64 {
    payload_len as u64 | (target_len as u64) << 32 | (flags as u64) << 48
}

/// Inverse of [`encode_lengths`].
#[inline]
pub fn decode_lengths(word: u64) -> (u32, u16, u16) {
    (word as u32, (word >> 32) as u16, (word >> 48) as u16)
}

/// Frame length for a payload of `payload_len` bytes.
#[inline]
pub fn frame_len(payload_len: usize) -> usize {
    FRAME_HEADER_SIZE + payload_len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word0_round_trips_claimed_and_committed() {
        for committed in [false, true] {
            let w = Word0::encode(1234, committed, Kind::Data, Level::Warn, 1023);
            assert_ne!(w, 0);
            let d = Word0::decode(w).unwrap();
            assert_eq!(d.len, 1234);
            assert_eq!(d.committed, committed);
            assert_eq!(d.kind, Kind::Data as u8);
            assert_eq!(d.level, Level::Warn as u8);
            assert_eq!(d.slot, 1023);
            assert_eq!(d.span(), 1240);
        }
        assert_eq!(Word0::decode(0), None);
    }

    #[test]
    fn lengths_round_trip() {
        let w = encode_lengths(u32::MAX - 3, 77, 0x8001);
        assert_eq!(decode_lengths(w), (u32::MAX - 3, 77, 0x8001));
    }

    #[test]
    fn level_names_parse_back() {
        for l in [
            Level::Error,
            Level::Warn,
            Level::Info,
            Level::Debug,
            Level::Trace,
        ] {
            assert_eq!(Level::parse(l.as_str()), Some(l));
            assert_eq!(Level::from_u8(l as u8), l);
        }
        assert_eq!(Level::parse("loud"), None);
        assert_eq!(Level::from_u8(200), Level::None);
    }
}
