//! Opaque messages for `--format json` logs, and their check. Message `seq` of producer `id`
//! is a pure function of `(id, seq, max_size)`: 1 byte to `max_size`, printable ASCII,
//! JSON-safe, no newline and no prefix. The log's `tid` field says whose a message is (the test
//! producer prints its thread ids with their producer ids), so any length down to one byte and
//! any producer id (threads and forked children get ids past 999) can be tested, which the
//! self-describing lines of [`crate::record`] cannot. The verifier rebuilds each message and
//! compares bytes: exactly once, untorn, in order.

use crate::record::mix;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// Record `seq` of producer `id`: its length is drawn from 1 byte to `max_size` (mostly small,
/// some over 4 KiB, a few near `max_size`), its bytes printable ASCII, JSON-safe, no newline.
pub fn record(id: u32, seq: u64, max_size: usize, out: &mut Vec<u8>) {
    let h = mix(((id as u64) << 40) ^ seq);
    let len = match h % 1000 {
        0 => max_size - (h >> 20) as usize % (max_size / 2).max(1),
        1..=10 => 4096 + (h >> 20) as usize % 61440,
        _ => 1 + (h >> 20) as usize % 200,
    }
    .clamp(1, max_size);
    out.clear();
    let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .:;-_";
    let start = (h >> 8) as usize % alphabet.len();
    out.extend((0..len).map(|i| alphabet[(start + i * 7 + (i >> 6)) % alphabet.len()]));
}

/// What [`verify_json_log`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Records seen, per producer thread id.
    pub per_tid: HashMap<u32, u64>,
    /// Lines that were not valid JSON records of a known producer.
    pub bad: Vec<String>,
    /// Records whose content did not match the expected record at their position.
    pub mismatched: u64,
    /// Drain notices (`"ringlog": true`).
    pub notices: Vec<String>,
}

/// Checks a `--format json` log: the records of each producer thread (tid, mapped to its
/// producer id by `ids`) must be, in order, `record(id, 0..)`: none torn, lost or repeated.
/// Returns the verdict; use [`assert_exact`] to assert.
pub fn verify_json_log(path: &Path, ids: &HashMap<u32, u32>, max_size: usize) -> Verdict {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut v = Verdict::default();
    let mut expect = Vec::new();
    for line in BufReader::with_capacity(1 << 20, file).split(b'\n') {
        let line = line.expect("read log");
        let Ok(obj) = serde_json::from_slice::<serde_json::Value>(&line) else {
            v.bad
                .push(String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned());
            continue;
        };
        if obj["ringlog"] == true {
            v.notices.push(obj["msg"].as_str().unwrap_or("").to_owned());
            continue;
        }
        let tid = obj["tid"].as_u64().unwrap_or(0) as u32;
        let (Some(&id), Some(msg)) = (ids.get(&tid), obj["msg"].as_str()) else {
            v.bad
                .push(String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned());
            continue;
        };
        let seq = v.per_tid.entry(tid).or_insert(0);
        record(id, *seq, max_size, &mut expect);
        if expect != msg.as_bytes() {
            v.mismatched += 1;
        }
        *seq += 1;
    }
    v
}

/// Checks that the messages of thread `tid` in a `--format json` log are, in order, a
/// subsequence of `record(id, 0..records)` (what a producer whose full policy dropped some
/// records leaves); returns how many there are. Panics on a record that is not one of them,
/// or out of order.
pub fn verify_subsequence(path: &Path, tid: u32, id: u32, records: u64, max_size: usize) -> u64 {
    let text = std::fs::read(path).expect("read log");
    let mut seq = 0u64;
    let mut found = 0u64;
    let mut expect = Vec::new();
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let obj: serde_json::Value = serde_json::from_slice(line).expect("a JSON line");
        if obj["ringlog"] == true || obj["tid"].as_u64() != Some(tid as u64) {
            continue;
        }
        let msg = obj["msg"].as_str().expect("msg").as_bytes();
        loop {
            assert!(
                seq < records,
                "record {found} of tid {tid} is not one it sent, or out of order"
            );
            record(id, seq, max_size, &mut expect);
            seq += 1;
            if expect == msg {
                break;
            }
        }
        found += 1;
    }
    found
}

/// Asserts the verdict shows exactly `records` records from every thread in `ids`, all intact.
pub fn assert_exact(v: &Verdict, ids: &HashMap<u32, u32>, records: u64) {
    assert!(
        v.bad.is_empty(),
        "{} bad lines, first: {:?}",
        v.bad.len(),
        v.bad.first()
    );
    assert_eq!(
        v.mismatched, 0,
        "records torn, reordered, duplicated or lost"
    );
    for tid in ids.keys() {
        assert_eq!(
            v.per_tid.get(tid).copied().unwrap_or(0),
            records,
            "records of tid {tid}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(tid: u32, msg: &[u8]) -> String {
        let msg = std::str::from_utf8(msg).unwrap();
        serde_json::json!({ "tid": tid, "msg": msg }).to_string() + "\n"
    }

    #[test]
    fn verify_finds_every_message_and_catches_a_torn_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let ids = HashMap::from([(70, 0), (71, 1000)]);
        let (mut log, mut buf) = (String::new(), Vec::new());
        for seq in 0..50 {
            for (&tid, &id) in &ids {
                record(id, seq, 300, &mut buf);
                assert!((1..=300).contains(&buf.len()));
                log += &line(tid, &buf);
            }
        }
        std::fs::write(&path, &log).unwrap();
        assert_exact(&verify_json_log(&path, &ids, 300), &ids, 50);
        assert_eq!(verify_subsequence(&path, 71, 1000, 50, 300), 50);
        // What a producer whose full policy dropped some leaves: a subsequence, in order.
        let kept: String = (0..50)
            .step_by(2)
            .map(|seq| {
                record(1000, seq, 300, &mut buf);
                line(71, &buf)
            })
            .collect();
        std::fs::write(&path, kept).unwrap();
        assert_eq!(verify_subsequence(&path, 71, 1000, 50, 300), 25);

        record(0, 50, 300, &mut buf);
        buf.push(b'x');
        log += &line(70, &buf);
        log += "{\"ringlog\":true,\"msg\":\"ringlog: dropped 1 records\"}\n";
        log += "not json\n";
        std::fs::write(&path, &log).unwrap();
        let v = verify_json_log(&path, &ids, 300);
        assert_eq!(v.mismatched, 1, "the torn message");
        assert_eq!(v.notices, ["ringlog: dropped 1 records"]);
        assert_eq!(v.bad.len(), 1);
        assert_eq!(v.per_tid[&70], 51);
    }
}
