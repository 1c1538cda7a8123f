//! Segment files under /dev/shm: creation, opening, racing creators, validation of whatever is
//! found at the path, permissions, and the error messages users see. Every test uses its own
//! ring name (test name + process id) so tests run in parallel, and removes its files even when
//! it fails.
#![cfg(not(loom))]

use ringlog_core::layout::{self, LAYOUT_VERSION};
use ringlog_core::segment::{validate_name, NAME_PREFIX, SHM_DIR};
use ringlog_core::{
    Consumer, ErrorChain, Frame, Geometry, LayoutError, Level, Location, OpenError, RecordMeta,
    Segment, SegmentOptions,
};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Barrier;

/// Removes the segment file when dropped, pass or fail.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A ring name unique to this test and process, and its file (removed on drop).
fn unique(test: &str) -> (Location, Cleanup) {
    let name = format!("core-{test}-{}", std::process::id());
    assert!(
        name.len() <= 64,
        "test name too long for a ring name: {name}"
    );
    let path = Path::new(SHM_DIR).join(format!("{NAME_PREFIX}{name}"));
    let _ = std::fs::remove_file(&path); // a leftover from a crashed earlier run
    (Location::Name(name), Cleanup(path))
}

const GEOMETRY: Geometry = Geometry {
    capacity: 4096,
    max_record: 1000,
    slots: 4,
};

fn small() -> SegmentOptions {
    SegmentOptions {
        capacity: Some(GEOMETRY.capacity),
        max_record: Some(GEOMETRY.max_record),
        slots: Some(GEOMETRY.slots),
        ..SegmentOptions::default()
    }
}

fn open_only() -> SegmentOptions {
    SegmentOptions {
        create: false,
        ..SegmentOptions::default()
    }
}

/// Asserts `text` contains each of `words`.
fn assert_says(text: &str, words: &[&str]) {
    for w in words {
        assert!(text.contains(w), "{text:?} does not mention {w:?}");
    }
}

fn write_record(segment: &Segment, payload: &[u8]) {
    let ring = segment.ring();
    let claim = ring
        .claim(0, payload.len(), &AtomicU64::new(ring.head()))
        .unwrap();
    ring.write_payload(&claim, 0, payload);
    let meta = RecordMeta {
        payload_len: payload.len() as u32,
        level: Level::Info,
        ..RecordMeta::default()
    };
    let _ = ring.commit(claim, &meta);
}

fn read_record(segment: &Segment) -> Vec<u8> {
    let mut consumer = Consumer::new(segment.ring()).expect("the only consumer");
    let Frame::Record(record) = consumer.peek() else {
        panic!("no record at {}", consumer.position())
    };
    let mut buf = vec![0; record.meta().payload_len as usize];
    consumer.read_payload(&record, 0, &mut buf);
    buf
}

#[test]
fn create_then_open_sees_the_same_ring() {
    let (location, file) = unique("create-open");
    let Location::Name(name) = &location else {
        unreachable!()
    };
    let a = Segment::open(&location, &small()).unwrap();
    assert!(a.created());
    assert_eq!(a.path(), file.0);
    assert_eq!(a.name(), name);
    assert_eq!(a.ring().geometry(), GEOMETRY);

    let meta = std::fs::metadata(&file.0).unwrap();
    assert_eq!(meta.len(), GEOMETRY.segment_len());
    assert!(
        meta.blocks() * 512 >= GEOMETRY.segment_len(),
        "pages are reserved up front (fallocate), not sparse: {} blocks",
        meta.blocks()
    );

    let b = Segment::open(&location, &open_only()).unwrap();
    assert!(!b.created());
    assert_eq!(b.ring().geometry(), GEOMETRY);
    assert_eq!(b.ring().created_ns(), a.ring().created_ns());
    assert!(a.ring().created_ns() > 0);

    // Two mappings of one file: a record written through one is read through the other.
    write_record(&a, b"through the shared mapping");
    assert_eq!(read_record(&b), b"through the shared mapping");

    // Creating again finds it: no second ring, no new geometry.
    let c = Segment::open(
        &location,
        &SegmentOptions {
            max_record: Some(7),
            ..small()
        },
    )
    .unwrap();
    assert!(!c.created());
    assert_eq!(c.ring().geometry(), GEOMETRY);
}

#[test]
fn an_explicit_path_works_like_a_name() {
    let (_, file) = unique("explicit-path");
    let path = file.0.with_extension("ring");
    let _also = Cleanup(path.clone());
    let location = Location::Path(path.clone());
    assert_eq!(location.display_name(), path.display().to_string());
    let a = Segment::open(&location, &small()).unwrap();
    assert!(a.created());
    let b = Segment::open(&location, &open_only()).unwrap();
    assert_eq!(b.ring().created_ns(), a.ring().created_ns());
}

#[test]
fn racing_creators_all_succeed_on_one_ring() {
    const THREADS: usize = 8;
    for round in 0..10 {
        let (location, _file) = unique(&format!("race-{round}"));
        let barrier = Barrier::new(THREADS);
        let segments: Vec<Segment> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        Segment::open(&location, &small())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap().unwrap())
                .collect()
        });
        let creators = segments.iter().filter(|s| s.created()).count();
        assert_eq!(
            creators, 1,
            "round {round}: exactly one creator wins the link"
        );
        let created_ns = segments[0].ring().created_ns();
        assert!(
            segments.iter().all(|s| s.ring().created_ns() == created_ns),
            "round {round}: one ring"
        );
        write_record(&segments[THREADS - 1], b"seen by all");
        for s in &segments {
            assert_eq!(read_record(s), b"seen by all");
        }
    }
}

#[test]
fn opening_a_missing_ring_without_create_is_not_found() {
    let (location, file) = unique("missing");
    let Location::Name(name) = &location else {
        unreachable!()
    };
    let err = Segment::open(&location, &open_only()).unwrap_err();
    let OpenError::NotFound { ring, path } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(ring, name);
    assert_eq!(path, &file.0);
    assert_says(
        &ErrorChain(&err).to_string(),
        &[
            &format!("ring '{name}' not found"),
            &format!("ringlog-drain --ring {name}"),
            "create",
        ],
    );
    assert!(!file.0.exists(), "nothing was created");
}

#[test]
fn invalid_names_are_refused_before_touching_the_filesystem() {
    let long = "a".repeat(65);
    for name in [
        "",
        "a/b",
        "../etc",
        long.as_str(),
        "with space",
        "ünï",
        "nul\0",
        "semi;colon",
    ] {
        let err = Segment::open(&Location::Name(name.to_owned()), &small()).unwrap_err();
        let OpenError::InvalidName { name: got } = &err else {
            panic!("{name:?}: {err:?}")
        };
        assert_eq!(got, name);
        assert_says(
            &ErrorChain(&err).to_string(),
            &["invalid ring name", &format!("{name:?}"), "1 to 64", "path"],
        );
        assert!(validate_name(name).is_err());
    }
    // A runaway name is cut in the message, its length said.
    let runaway = "x".repeat(5000);
    let err = Segment::open(&Location::Name(runaway.clone()), &small()).unwrap_err();
    let message = ErrorChain(&err).to_string();
    assert_says(
        &message,
        &[
            &format!("invalid ring name {:?}...", "x".repeat(64)),
            "(5000 characters)",
            "1 to 64",
        ],
    );
    assert!(message.len() < 300, "{message}");
    for name in ["a", "A-z_0.9", &"b".repeat(64)] {
        assert_eq!(
            validate_name(name).map_err(|e| e.to_string()),
            Ok(()),
            "{name:?}"
        );
    }
}

/// Writes `bytes` as the file of `location`.
fn plant(file: &Cleanup, bytes: &[u8]) {
    std::fs::write(&file.0, bytes).unwrap();
}

fn invalid_reason(err: &OpenError) -> &LayoutError {
    match err {
        OpenError::Invalid { reason, .. } => reason,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn a_file_that_is_not_a_ring_is_invalid() {
    let (location, file) = unique("not-a-ring");
    let Location::Name(name) = &location else {
        unreachable!()
    };
    let len = GEOMETRY.segment_len() as usize;
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    plant(&file, &noise);
    let magic = u64::from_le_bytes(noise[..8].try_into().unwrap());
    for options in [open_only(), small()] {
        let err = Segment::open(&location, &options).unwrap_err();
        assert_eq!(invalid_reason(&err), &LayoutError::BadMagic(magic));
        assert_says(
            &ErrorChain(&err).to_string(),
            &[
                &format!("ring '{name}'"),
                "not a ringlog segment",
                "remove the file",
            ],
        );
    }
    assert_eq!(
        std::fs::read(&file.0).unwrap(),
        noise,
        "opening with create never clobbers a file"
    );

    for short in [0usize, 100, layout::HEADER_SIZE - 8] {
        plant(&file, &noise[..short]);
        let err = Segment::open(&location, &open_only()).unwrap_err();
        assert_eq!(
            invalid_reason(&err),
            &LayoutError::TooShort {
                len: short as u64,
                need: layout::HEADER_SIZE as u64
            }
        );
        assert_says(
            &ErrorChain(&err).to_string(),
            &[&format!("ring '{name}'"), "truncated", "remove the file"],
        );
    }

    // Zeroes: what a segment looks like before its creator publishes it.
    plant(&file, &vec![0; len]);
    let err = Segment::open(&location, &open_only()).unwrap_err();
    assert_eq!(invalid_reason(&err), &LayoutError::NotYetInitialized);
}

#[test]
fn a_truncated_ring_is_invalid() {
    let (location, file) = unique("truncated");
    drop(Segment::open(&location, &small()).unwrap());
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&file.0)
        .unwrap();
    f.set_len(GEOMETRY.segment_len() - 4096).unwrap();
    let err = Segment::open(&location, &open_only()).unwrap_err();
    assert_eq!(
        invalid_reason(&err),
        &LayoutError::TooShort {
            len: GEOMETRY.segment_len() - 4096,
            need: GEOMETRY.segment_len()
        }
    );
}

#[test]
fn a_segment_of_another_layout_version_is_refused_with_advice() {
    let (location, file) = unique("version");
    let Location::Name(name) = &location else {
        unreachable!()
    };
    drop(Segment::open(&location, &small()).unwrap());
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&file.0)
        .unwrap();
    f.write_all_at(
        &(LAYOUT_VERSION + 1).to_le_bytes(),
        layout::off::VERSION as u64,
    )
    .unwrap();
    let err = Segment::open(&location, &open_only()).unwrap_err();
    assert_eq!(
        invalid_reason(&err),
        &LayoutError::VersionMismatch {
            found: LAYOUT_VERSION + 1
        }
    );
    assert_says(
        &ErrorChain(&err).to_string(),
        &[
            &format!("ring '{name}'"),
            &format!("layout version {}", LAYOUT_VERSION + 1),
            &format!("understands version {LAYOUT_VERSION}"),
            "same ringlog version",
            "remove the file",
        ],
    );
    // Creating does not replace it either.
    let err = Segment::open(&location, &small()).unwrap_err();
    assert!(matches!(
        invalid_reason(&err),
        LayoutError::VersionMismatch { .. }
    ));
}

#[test]
fn opening_with_another_capacity_is_a_mismatch() {
    let (location, _file) = unique("capacity");
    let Location::Name(name) = &location else {
        unreachable!()
    };
    drop(Segment::open(&location, &small()).unwrap());
    let err = Segment::open(
        &location,
        &SegmentOptions {
            capacity: Some(8192),
            ..open_only()
        },
    )
    .unwrap_err();
    let OpenError::CapacityMismatch { ring, found, asked } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((ring.as_str(), *found, *asked), (name.as_str(), 4096, 8192));
    assert_says(
        &ErrorChain(&err).to_string(),
        &[
            &format!("ring '{name}'"),
            "4096",
            "8192",
            "drop the capacity option",
        ],
    );
    let same = Segment::open(
        &location,
        &SegmentOptions {
            capacity: Some(4096),
            ..open_only()
        },
    )
    .unwrap();
    assert_eq!(same.ring().geometry(), GEOMETRY);
}

#[test]
fn a_bad_geometry_is_refused_and_leaves_no_file() {
    let (location, file) = unique("bad-geometry");
    for options in [
        SegmentOptions {
            capacity: Some(1000),
            ..small()
        },
        SegmentOptions {
            max_record: Some(4096),
            ..small()
        },
        SegmentOptions {
            slots: Some(0),
            ..small()
        },
    ] {
        let err = Segment::open(&location, &options).unwrap_err();
        assert!(
            matches!(
                &err,
                // (`reason` is a `GeometryError`: which rule the sizes break.)
                OpenError::BadOptions { .. }
            ),
            "{options:?}: {err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("cannot create ring") && text.contains("nothing was created"),
            "{text}"
        );
        assert!(!file.0.exists(), "{options:?} left a file behind");
    }
}

#[test]
fn the_file_mode_is_0600_unless_asked_otherwise() {
    let (location, file) = unique("mode");
    let segment = Segment::open(&location, &small()).unwrap();
    assert_eq!(
        std::fs::metadata(&file.0).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    drop(segment);
    std::fs::remove_file(&file.0).unwrap();

    // A mode wider than the usual umask is applied as given.
    let segment = Segment::open(
        &location,
        &SegmentOptions {
            mode: 0o666,
            ..small()
        },
    )
    .unwrap();
    assert!(segment.created());
    assert_eq!(
        std::fs::metadata(&file.0).unwrap().permissions().mode() & 0o7777,
        0o666
    );
    drop(segment);
    std::fs::remove_file(&file.0).unwrap();
    let _segment = Segment::open(
        &location,
        &SegmentOptions {
            mode: 0o640,
            ..small()
        },
    )
    .unwrap();
    assert_eq!(
        std::fs::metadata(&file.0).unwrap().permissions().mode() & 0o7777,
        0o640
    );
}

#[test]
fn each_open_has_its_own_lock_owner() {
    use ringlog_core::lock;
    use std::os::fd::AsFd;
    let (location, _file) = unique("locks");
    let a = Segment::open(&location, &small()).unwrap();
    let b = Segment::open(&location, &open_only()).unwrap();
    let byte = layout::slot_lock_byte(2);
    assert!(lock::try_lock(a.file().as_fd(), byte).unwrap());
    assert!(
        lock::is_locked(b.file().as_fd(), byte).unwrap(),
        "another open sees the lock"
    );
    assert!(!lock::try_lock(b.file().as_fd(), byte).unwrap());
    let again = a.reopen_file().unwrap();
    assert!(
        lock::is_locked(again.as_fd(), byte).unwrap(),
        "a reopened file is another owner"
    );
    drop(a);
    assert!(
        !lock::is_locked(b.file().as_fd(), byte).unwrap(),
        "the lock died with its owner"
    );
}

#[test]
fn reopening_for_locks_reaches_our_segment_even_when_its_path_was_replaced() {
    use ringlog_core::lock;
    use std::os::fd::AsFd;
    let (location, file) = unique("reopen-replaced");
    let ours = Segment::open(&location, &small()).unwrap();
    // Another producer removes the ring and creates a new one under the same name.
    std::fs::remove_file(&file.0).unwrap();
    let theirs = Segment::open(&location, &small()).unwrap();
    assert!(theirs.created());

    let reopened = ours.reopen_file().unwrap();
    let inode = |f: &std::fs::File| {
        let m = f.metadata().unwrap();
        (m.dev(), m.ino())
    };
    assert_eq!(
        inode(&reopened),
        inode(ours.file()),
        "the lock descriptor must be on the file we have mapped, not on the one at the path"
    );
    // Its locks are seen by a drain on our ring, not by one on theirs.
    let byte = layout::slot_lock_byte(3);
    assert!(lock::try_lock(reopened.as_fd(), byte).unwrap());
    assert!(lock::is_locked(ours.file().as_fd(), byte).unwrap());
    assert!(!lock::is_locked(theirs.file().as_fd(), byte).unwrap());
}
