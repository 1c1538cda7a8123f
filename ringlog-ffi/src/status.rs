//! [`Status`]: the stable codes every binding reports (C return values, Python exception
//! `.code`, Node `err.code`), and the one mapping from the Rust error types to them.
//!
//! The numbers never change once released; new codes are appended. The error enums of
//! ringlog-core and ringlog-writer are (becoming) `#[non_exhaustive]`, so each mapping ends in a
//! catch-all to the closest code.

use ringlog_core::ring::LayoutError;
use ringlog_core::OpenError;
use ringlog_writer::WriteError;
use std::ffi::CStr;
use std::io;

/// The result of a libringlog call. `RINGLOG_OK` (0) is success; every other value is a
/// failure whose full message `ringlog_last_error()` returns on the same thread.
///
/// The variants carry their C names, so one name means one code in every language.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Success.
    RINGLOG_OK = 0,
    /// A required pointer argument was NULL.
    RINGLOG_NULL_ARGUMENT = 1,
    /// The ring name is not 1 to 64 characters from `A-Z a-z 0-9 . _ -`, or not UTF-8.
    RINGLOG_BAD_NAME = 2,
    /// An argument is out of range: options (capacity not a power of two, unknown policy,
    /// wrong `size`...), an unknown level, a claim used wrongly.
    RINGLOG_BAD_ARGUMENT = 3,
    /// No ring exists there and `create` was off.
    RINGLOG_NOT_FOUND = 4,
    /// The file is not a usable ring (bad magic, truncated, or another capacity than asked).
    RINGLOG_NOT_A_RING = 5,
    /// The ring was made by a ringlog build with another segment layout.
    RINGLOG_VERSION_MISMATCH = 6,
    /// The operating system refused access to the ring.
    RINGLOG_PERMISSION = 7,
    /// No room in the filesystem (usually /dev/shm) to create the ring.
    RINGLOG_NO_SPACE = 8,
    /// Any other operating-system error.
    RINGLOG_IO = 9,
    /// The record is larger than the ring's max record: it can never be written whole.
    RINGLOG_TOO_LARGE = 10,
    /// The ring was full and the full policy dropped the record (it is counted, and the drain
    /// reports the count in the log).
    RINGLOG_DROPPED = 11,
    /// This thread holds an open claim on the same ring: waiting for space could never end.
    RINGLOG_WOULD_DEADLOCK = 12,
    /// The writer was already closed.
    RINGLOG_CLOSED = 13,
    /// A bug in ringlog: a panic was caught at the library boundary.
    RINGLOG_PANIC = 14,
}

impl Status {
    /// Every status, in numeric order.
    ///
    /// cbindgen:ignore
    pub const ALL: [Status; 15] = [
        Status::RINGLOG_OK,
        Status::RINGLOG_NULL_ARGUMENT,
        Status::RINGLOG_BAD_NAME,
        Status::RINGLOG_BAD_ARGUMENT,
        Status::RINGLOG_NOT_FOUND,
        Status::RINGLOG_NOT_A_RING,
        Status::RINGLOG_VERSION_MISMATCH,
        Status::RINGLOG_PERMISSION,
        Status::RINGLOG_NO_SPACE,
        Status::RINGLOG_IO,
        Status::RINGLOG_TOO_LARGE,
        Status::RINGLOG_DROPPED,
        Status::RINGLOG_WOULD_DEADLOCK,
        Status::RINGLOG_CLOSED,
        Status::RINGLOG_PANIC,
    ];

    /// The C name, e.g. `"RINGLOG_TOO_LARGE"` (also the Node `err.code`).
    pub fn name(self) -> &'static str {
        self.c_name().to_str().expect("status names are ASCII")
    }

    /// The C name as a C string (what `ringlog_status_str` returns).
    pub const fn c_name(self) -> &'static CStr {
        match self {
            Status::RINGLOG_OK => c"RINGLOG_OK",
            Status::RINGLOG_NULL_ARGUMENT => c"RINGLOG_NULL_ARGUMENT",
            Status::RINGLOG_BAD_NAME => c"RINGLOG_BAD_NAME",
            Status::RINGLOG_BAD_ARGUMENT => c"RINGLOG_BAD_ARGUMENT",
            Status::RINGLOG_NOT_FOUND => c"RINGLOG_NOT_FOUND",
            Status::RINGLOG_NOT_A_RING => c"RINGLOG_NOT_A_RING",
            Status::RINGLOG_VERSION_MISMATCH => c"RINGLOG_VERSION_MISMATCH",
            Status::RINGLOG_PERMISSION => c"RINGLOG_PERMISSION",
            Status::RINGLOG_NO_SPACE => c"RINGLOG_NO_SPACE",
            Status::RINGLOG_IO => c"RINGLOG_IO",
            Status::RINGLOG_TOO_LARGE => c"RINGLOG_TOO_LARGE",
            Status::RINGLOG_DROPPED => c"RINGLOG_DROPPED",
            Status::RINGLOG_WOULD_DEADLOCK => c"RINGLOG_WOULD_DEADLOCK",
            Status::RINGLOG_CLOSED => c"RINGLOG_CLOSED",
            Status::RINGLOG_PANIC => c"RINGLOG_PANIC",
        }
    }

    /// The stable number (the C return value, the Python and Node `.status`).
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// The status with this number, if there is one.
    pub fn from_code(code: i32) -> Option<Status> {
        usize::try_from(code)
            .ok()
            .and_then(|i| Status::ALL.get(i).copied())
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl From<&OpenError> for Status {
    fn from(e: &OpenError) -> Status {
        // The wildcard arm is for variants added later (the enum is becoming non_exhaustive).
        #[allow(unreachable_patterns)]
        match e {
            OpenError::InvalidName { .. } => Status::RINGLOG_BAD_NAME,
            OpenError::NotFound { .. } => Status::RINGLOG_NOT_FOUND,
            OpenError::Invalid {
                reason: LayoutError::VersionMismatch { .. },
                ..
            } => Status::RINGLOG_VERSION_MISMATCH,
            OpenError::Invalid { .. } | OpenError::CapacityMismatch { .. } => {
                Status::RINGLOG_NOT_A_RING
            }
            OpenError::BadOptions { .. } => Status::RINGLOG_BAD_ARGUMENT,
            OpenError::NoSpace { .. } => Status::RINGLOG_NO_SPACE,
            OpenError::Io { source, .. } => Status::from(source),
            OpenError::RegistryFull { .. } => Status::RINGLOG_IO,
            _ => Status::RINGLOG_IO,
        }
    }
}

impl From<&WriteError> for Status {
    fn from(e: &WriteError) -> Status {
        // The wildcard arm is for variants added later (the enum is becoming non_exhaustive).
        #[allow(unreachable_patterns)]
        match e {
            WriteError::TooLarge { .. } => Status::RINGLOG_TOO_LARGE,
            WriteError::Dropped => Status::RINGLOG_DROPPED,
            WriteError::WouldDeadlock => Status::RINGLOG_WOULD_DEADLOCK,
            WriteError::Attach(open) => Status::from(open),
            _ => Status::RINGLOG_IO,
        }
    }
}

impl From<&io::Error> for Status {
    fn from(e: &io::Error) -> Status {
        match e.raw_os_error() {
            Some(libc::EACCES | libc::EPERM) => Status::RINGLOG_PERMISSION,
            Some(libc::ENOSPC | libc::EDQUOT) => Status::RINGLOG_NO_SPACE,
            Some(libc::ENOENT) => Status::RINGLOG_NOT_FOUND,
            _ if e.kind() == io::ErrorKind::PermissionDenied => Status::RINGLOG_PERMISSION,
            _ => Status::RINGLOG_IO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn codes_are_the_table_in_order_and_names_match_the_variants() {
        for (i, s) in Status::ALL.iter().enumerate() {
            assert_eq!(s.code(), i as i32);
            assert_eq!(Status::from_code(i as i32), Some(*s));
            assert_eq!(format!("{s:?}"), s.name());
        }
        assert_eq!(Status::from_code(-1), None);
        assert_eq!(Status::from_code(Status::ALL.len() as i32), None);
        assert_eq!(Status::RINGLOG_TOO_LARGE.code(), 10);
        assert_eq!(Status::RINGLOG_PANIC.code(), 14);
    }

    fn io(ring: &str, source: io::Error) -> OpenError {
        OpenError::Io {
            ring: ring.into(),
            context: "cannot open",
            path: PathBuf::from("/dev/shm/x"),
            source,
        }
    }

    #[test]
    fn open_errors_map_to_their_status() {
        // BadOptions -> RINGLOG_BAD_ARGUMENT is checked end to end by tests/c/statuses.c.
        let ring = || "r".to_string();
        let path = || PathBuf::from("/dev/shm/ringlog-r");
        let cases = [
            (
                OpenError::InvalidName { name: "a/b".into() },
                Status::RINGLOG_BAD_NAME,
            ),
            (
                OpenError::NotFound {
                    ring: ring(),
                    path: path(),
                },
                Status::RINGLOG_NOT_FOUND,
            ),
            (
                OpenError::Invalid {
                    ring: ring(),
                    path: path(),
                    reason: LayoutError::BadMagic(7),
                },
                Status::RINGLOG_NOT_A_RING,
            ),
            (
                OpenError::Invalid {
                    ring: ring(),
                    path: path(),
                    reason: LayoutError::VersionMismatch { found: 99 },
                },
                Status::RINGLOG_VERSION_MISMATCH,
            ),
            (
                OpenError::CapacityMismatch {
                    ring: ring(),
                    found: 1 << 20,
                    asked: 1 << 21,
                },
                Status::RINGLOG_NOT_A_RING,
            ),
            (
                OpenError::NoSpace {
                    ring: ring(),
                    path: path(),
                    needed: 1,
                },
                Status::RINGLOG_NO_SPACE,
            ),
            (
                OpenError::RegistryFull {
                    ring: ring(),
                    slots: 4,
                },
                Status::RINGLOG_IO,
            ),
            (
                io("r", io::Error::from_raw_os_error(libc::EACCES)),
                Status::RINGLOG_PERMISSION,
            ),
            (
                io("r", io::Error::from_raw_os_error(libc::ENOSPC)),
                Status::RINGLOG_NO_SPACE,
            ),
            (
                io("r", io::Error::from_raw_os_error(libc::EIO)),
                Status::RINGLOG_IO,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(Status::from(&error), status, "{error}");
        }
    }

    #[test]
    fn write_errors_map_to_their_status() {
        assert_eq!(
            Status::from(&WriteError::TooLarge { len: 9, max: 8 }),
            Status::RINGLOG_TOO_LARGE
        );
        assert_eq!(Status::from(&WriteError::Dropped), Status::RINGLOG_DROPPED);
        assert_eq!(
            Status::from(&WriteError::WouldDeadlock),
            Status::RINGLOG_WOULD_DEADLOCK
        );
        let attach = WriteError::Attach(OpenError::RegistryFull {
            ring: "r".into(),
            slots: 1,
        });
        assert_eq!(Status::from(&attach), Status::RINGLOG_IO);
    }
}
