//! Errors of opening or creating a ring. Each message names the ring and says what to do.

use crate::ring::{GeometryError, LayoutError};
use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a ring could not be opened or created. Each message says what to do; the cause, where
/// there is one, comes from [`source`](std::error::Error::source) (print the chain).
#[derive(Debug)]
#[non_exhaustive]
pub enum OpenError {
    /// The name is not `[A-Za-z0-9._-]{1,64}`.
    InvalidName {
        /// The name given.
        name: String,
    },
    /// No segment exists and creating one was not allowed.
    NotFound {
        /// The ring's display name.
        ring: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The file exists but is not a usable ring.
    Invalid {
        /// The ring's display name.
        ring: String,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: LayoutError,
    },
    /// The options asked for a ring that cannot exist (capacity not a power of two, ...).
    BadOptions {
        /// The ring's display name.
        ring: String,
        /// What is wrong.
        reason: GeometryError,
    },
    /// The ring exists with another capacity than the one asked for.
    CapacityMismatch {
        /// The ring's display name.
        ring: String,
        /// Capacity of the existing ring.
        found: u64,
        /// Capacity asked for.
        asked: u64,
    },
    /// The filesystem has no room for the segment (tmpfs full or too small).
    NoSpace {
        /// The ring's display name.
        ring: String,
        /// The file.
        path: PathBuf,
        /// Bytes needed.
        needed: u64,
    },
    /// Every registry slot is owned by a live producer or awaits the drain.
    RegistryFull {
        /// The ring's display name.
        ring: String,
        /// Number of slots.
        slots: u32,
    },
    /// Another operating-system error, with what was being done.
    Io {
        /// The ring's display name.
        ring: String,
        /// What was being attempted.
        context: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// A name as an error message shows it: quoted and escaped, and, past [`ShownName::WHOLE`]
/// characters, cut with its length said, so a runaway argument (a whole file passed as the name)
/// does not bury the message.
struct ShownName<'a>(&'a str);

impl ShownName<'_> {
    /// Names up to this many characters are shown whole.
    const WHOLE: usize = 80;
    /// Characters shown of a longer one.
    const CUT: usize = 64;
}

impl fmt::Display for ShownName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chars = self.0.chars().count();
        if chars <= Self::WHOLE {
            return write!(f, "{:?}", self.0);
        }
        let start: String = self.0.chars().take(Self::CUT).collect();
        write!(f, "{start:?}... ({chars} characters)")
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::InvalidName { name } => write!(
                f,
                "invalid ring name {}: use 1 to 64 characters from A-Z a-z 0-9 . _ - \
                 (or pass an explicit path)",
                ShownName(name)
            ),
            OpenError::NotFound { ring, path } => write!(
                f,
                "ring '{ring}' not found at {}: start `ringlog-drain --ring {ring}`, or open it \
                 with create enabled",
                path.display()
            ),
            OpenError::Invalid {
                ring,
                path,
                reason: LayoutError::VersionMismatch { found },
            } => write!(
                f,
                "ring '{ring}' at {} has layout version {found} but this build understands \
                 version {}: stop every process using it and run the same ringlog version \
                 everywhere, or remove the file to start afresh",
                path.display(),
                crate::layout::LAYOUT_VERSION
            ),
            OpenError::Invalid { ring, path, .. } => write!(
                f,
                "ring '{ring}' at {} is not usable: remove the file (nothing in it can be read) \
                 or choose another ring name",
                path.display()
            ),
            OpenError::BadOptions { ring, .. } => write!(
                f,
                "cannot create ring '{ring}' with the sizes asked for; nothing was created"
            ),
            OpenError::CapacityMismatch { ring, found, asked } => write!(
                f,
                "ring '{ring}' already exists with capacity {found} bytes, not the {asked} asked \
                 for: drop the capacity option to use it as it is, or stop its users and remove \
                 it to recreate"
            ),
            OpenError::NoSpace { ring, path, needed } => {
                // The hint names the filesystem the segment is on: /dev/shm for a named ring,
                // the directory of an explicit path otherwise.
                let dir = path
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(std::path::Path::new("."));
                write!(
                    f,
                    "no space to create ring '{ring}' ({needed} bytes) at {}: free space in that \
                     filesystem (df -h {}), enlarge it, or ask for a smaller capacity",
                    path.display(),
                    dir.display()
                )
            }
            OpenError::RegistryFull { ring, slots } => write!(
                f,
                "ring '{ring}' has all {slots} producer slots in use: fewer producer threads, or \
                 make sure a drain runs (the slot of a producer that exited is free once the \
                 drain has reported its drops)"
            ),
            OpenError::Io {
                ring,
                context,
                path,
                source,
            } => {
                write!(f, "ring '{ring}': {context} {}", path.display())?;
                if source.kind() == io::ErrorKind::PermissionDenied {
                    write!(
                        f,
                        " (check the file's owner and mode, or the ring's --mode/group)"
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::Io { source, .. } => Some(source),
            // Its message already says which version it found.
            OpenError::Invalid {
                reason: LayoutError::VersionMismatch { .. },
                ..
            } => None,
            OpenError::Invalid { reason, .. } => Some(reason),
            OpenError::BadOptions { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

/// Displays an error and its causes on one line, joined by `: ` (for callers that have one line
/// to show, such as a binding's exception message or a test's assertion).
#[derive(Debug, Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a dyn std::error::Error);

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_no_space_hint_names_the_filesystem_the_ring_is_on() {
        let named = OpenError::NoSpace {
            ring: "app".into(),
            path: PathBuf::from("/dev/shm/ringlog-app"),
            needed: 1 << 20,
        };
        assert!(named.to_string().contains("(df -h /dev/shm)"), "{named}");
        let explicit = OpenError::NoSpace {
            ring: "/srv/rings/app".into(),
            path: PathBuf::from("/srv/rings/app"),
            needed: 1 << 20,
        };
        let text = explicit.to_string();
        assert!(text.contains("(df -h /srv/rings)"), "{text}");
        assert!(!text.contains("/dev/shm"), "{text}");
    }
    use std::error::Error;

    /// Every error either says its cause or hands it on, never both: a printed chain would
    /// repeat it.
    fn assert_cause_said_once(e: &dyn Error) {
        let mut current = e;
        while let Some(cause) = current.source() {
            let (outer, inner) = (current.to_string(), cause.to_string());
            assert!(
                !outer.contains(&inner),
                "{outer:?} repeats its source {inner:?}"
            );
            current = cause;
        }
    }

    #[test]
    fn open_errors_display_their_own_sentence_and_hand_on_the_cause() {
        let ring = || "r".to_owned();
        let path = || PathBuf::from("/dev/shm/ringlog-r");
        let denied = OpenError::Io {
            ring: ring(),
            context: "cannot open",
            path: path(),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        let geometry = GeometryError::Capacity { capacity: 3 };
        let errors = [
            denied,
            OpenError::Invalid {
                ring: ring(),
                path: path(),
                reason: LayoutError::BadGeometry(geometry),
            },
            OpenError::Invalid {
                ring: ring(),
                path: path(),
                reason: LayoutError::TooShort { len: 1, need: 2 },
            },
            OpenError::Invalid {
                ring: ring(),
                path: path(),
                reason: LayoutError::VersionMismatch { found: 9 },
            },
            OpenError::BadOptions {
                ring: ring(),
                reason: geometry,
            },
        ];
        for e in &errors {
            assert_cause_said_once(e);
        }
        // Nothing is lost: the chain still carries every cause.
        let chain = ErrorChain(&errors[0]).to_string();
        assert!(
            chain.contains("owner and mode") && chain.contains("permission denied"),
            "{chain}"
        );
        let chain = ErrorChain(&errors[1]).to_string();
        assert!(
            chain.contains("inconsistent segment header: capacity 3 must be"),
            "{chain}"
        );
        assert!(ErrorChain(&errors[3])
            .to_string()
            .contains("layout version 9"));
        assert!(ErrorChain(&errors[4]).to_string().contains("capacity 3"));
    }
}
