//! STAND-IN until `ringlog-ffi` lands on main: the same `Status` API (name, code, From the
//! Rust errors). Replaced by `ringlog_ffi::Status`.

use ringlog_writer::{OpenError, WriteError};
use std::io;

#[allow(non_camel_case_types, dead_code)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    RINGLOG_BAD_NAME = 2,
    RINGLOG_BAD_ARGUMENT = 3,
    RINGLOG_NOT_FOUND = 4,
    RINGLOG_NOT_A_RING = 5,
    RINGLOG_VERSION_MISMATCH = 6,
    RINGLOG_PERMISSION = 7,
    RINGLOG_NO_SPACE = 8,
    RINGLOG_IO = 9,
    RINGLOG_TOO_LARGE = 10,
    RINGLOG_DROPPED = 11,
    RINGLOG_WOULD_DEADLOCK = 12,
    RINGLOG_CLOSED = 13,
    RINGLOG_PANIC = 14,
}

impl Status {
    pub const ALL: [Status; 13] = [
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
    pub fn name(self) -> &'static str {
        match self {
            Status::RINGLOG_BAD_NAME => "RINGLOG_BAD_NAME",
            Status::RINGLOG_BAD_ARGUMENT => "RINGLOG_BAD_ARGUMENT",
            Status::RINGLOG_NOT_FOUND => "RINGLOG_NOT_FOUND",
            Status::RINGLOG_NOT_A_RING => "RINGLOG_NOT_A_RING",
            Status::RINGLOG_VERSION_MISMATCH => "RINGLOG_VERSION_MISMATCH",
            Status::RINGLOG_PERMISSION => "RINGLOG_PERMISSION",
            Status::RINGLOG_NO_SPACE => "RINGLOG_NO_SPACE",
            Status::RINGLOG_IO => "RINGLOG_IO",
            Status::RINGLOG_TOO_LARGE => "RINGLOG_TOO_LARGE",
            Status::RINGLOG_DROPPED => "RINGLOG_DROPPED",
            Status::RINGLOG_WOULD_DEADLOCK => "RINGLOG_WOULD_DEADLOCK",
            Status::RINGLOG_CLOSED => "RINGLOG_CLOSED",
            Status::RINGLOG_PANIC => "RINGLOG_PANIC",
        }
    }
    pub fn code(self) -> i32 {
        self as i32
    }
}

impl From<&OpenError> for Status {
    fn from(e: &OpenError) -> Status {
        match e {
            OpenError::InvalidName { .. } => Status::RINGLOG_BAD_NAME,
            OpenError::NotFound { .. } => Status::RINGLOG_NOT_FOUND,
            OpenError::Invalid {
                reason: ringlog_core::LayoutError::VersionMismatch { .. },
                ..
            } => Status::RINGLOG_VERSION_MISMATCH,
            OpenError::Invalid { .. } | OpenError::CapacityMismatch { .. } => {
                Status::RINGLOG_NOT_A_RING
            }
            OpenError::BadOptions { .. } => Status::RINGLOG_BAD_ARGUMENT,
            OpenError::NoSpace { .. } => Status::RINGLOG_NO_SPACE,
            OpenError::Io { source, .. } if source.kind() == io::ErrorKind::PermissionDenied => {
                Status::RINGLOG_PERMISSION
            }
            _ => Status::RINGLOG_IO,
        }
    }
}

impl From<&WriteError> for Status {
    fn from(e: &WriteError) -> Status {
        match e {
            WriteError::TooLarge { .. } => Status::RINGLOG_TOO_LARGE,
            WriteError::Dropped => Status::RINGLOG_DROPPED,
            WriteError::Attach(open) => Status::from(open),
        }
    }
}
