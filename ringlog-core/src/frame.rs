//! Record framing: the 40-byte frame header in front of every record's payload, the encoding of
//! its first word (the one that carries claim/commit state) and of its check word (the one that
//! says the frame was written in this lap). Pure encoding; no memory access.
//!
//! ```text
//! word 0  len:i32 (frame bytes incl. header, negative while claimed) | kind:u8 | level:u8 | slot:u16
//! word 1  check: the frame's ring position XOR the segment's key (`check_word`)
//! word 2  timestamp, ns since the Unix epoch
//! word 3  pid:u32 | tid:u32
//! word 4  payload_len:u32 | target_len:u16 | flags:u16
//! ...     payload: target bytes, then message bytes
//! ```
//!
//! Consumed space is not zeroed: it keeps whatever an earlier lap left there. A frame is written
//! in this lap exactly when its check word is `check_word(pos, key)`: the producer stores word 0
//! first, then the check word with Release, so a reader that Acquire-loads a matching check word
//! then finds word 0 of this lap (never zero: a frame is at least 8 bytes; negative from claim to
//! commit, positive after). An earlier lap's check word at the same offset names a position a
//! multiple of the capacity away; any other stale word (payload, timestamp) matches only if it
//! happens to equal 64 random bits, or a hostile producer put it there (see DESIGN.md, "Faults").
//!
//! The one frame with no room for a check word is an 8-byte padding, which can only start at
//! region offset `capacity - 8` (a longer frame there would straddle the end). That one word
//! keeps the old rule: the drain zeroes it when it releases it, and zero there means "not
//! written yet". Frames start at 8-byte aligned positions; the next one at `align8(len)`.

use crate::layout::align_record;

/// Bit of a record's flags: its timestamp is in [`crate::clock::ticks`], not ns; the drain
/// converts it.
pub const FLAG_TICKS: u16 = 1;

/// Bytes in the frame header before the payload.
pub const FRAME_HEADER_SIZE: usize = 40;

/// Index of the check word in the frame header.
pub const CHECK_WORD: usize = 1;
/// Index of the timestamp word.
pub const TIMESTAMP_WORD: usize = 2;
/// Index of the pid/tid word.
pub const IDS_WORD: usize = 3;
/// Index of the lengths-and-flags word.
pub const LENGTHS_WORD: usize = 4;

/// The check word of a frame at ring position `pos` in a segment whose key is `key`
/// ([`crate::layout::Header::frame_key`]). Never zero when `key` is odd (positions are 8-byte
/// aligned), and different for every position, so words an earlier lap left at the same offset
/// never match.
#[inline(always)]
pub fn check_word(pos: u64, key: u64) -> u64 {
    pos ^ key
}

/// What a frame holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A log record.
    Data = 1,
    /// Space to skip: the tail of the region at a wrap, an aborted claim, or the rest of a
    /// chunk its owner sealed.
    Padding = 2,
    /// The header of a producer's chunk ([`crate::chunk`]): the frames after it, up to the
    /// chunk's end, are that producer's. Committed from the start; never has a payload.
    Chunk = 3,
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

/// Word 3: pid and tid.
#[inline]
pub fn encode_ids(pid: u32, tid: u32) -> u64 {
    pid as u64 | (tid as u64) << 32
}

/// Byte offset of word 4 (lengths and flags) in the frame header.
pub const LENGTHS_OFFSET: usize = LENGTHS_WORD * 8;

/// Word 4: payload and target lengths and flags.
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
    fn check_words_differ_by_position_and_are_never_zero() {
        let key = 0x9e37_79b9_7f4a_7c15;
        assert_ne!(check_word(0, key), 0);
        assert_ne!(check_word(8, key), check_word(8 + 4096, key));
        assert_eq!(check_word(check_word(4096, key), key), 4096);
        assert_eq!(LENGTHS_OFFSET + 8, FRAME_HEADER_SIZE);
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
