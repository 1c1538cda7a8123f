//! A ring's segment file: naming, creation without ever exposing a half-built segment, opening
//! with full validation, and the mapping. Owns the file descriptor whose open file description
//! carries this process's OFD locks. Never decides policy (who may create, what to do when full).
//!
//! Creation: an unnamed file in the target directory (`O_TMPFILE`), its pages reserved with
//! `fallocate` (a full tmpfs fails here with `ENOSPC` rather than with `SIGBUS` later),
//! initialised and published (version word last), and only then linked to its name. Two
//! creators racing: `linkat` lets exactly one win; the other drops its file and opens the
//! winner's.

use crate::error::OpenError;
use crate::layout::{self, DEFAULT_CAPACITY};
use crate::memory::MappedMemory;
use crate::ring::{Geometry, LayoutError, Ring};
use rustix::fs::{self as rfs, AtFlags, FallocateFlags, Mode, OFlags};
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// Directory of named rings.
pub const SHM_DIR: &str = "/dev/shm";
/// File-name prefix of named rings: ring `x` lives at `/dev/shm/ringlog-x`.
pub const NAME_PREFIX: &str = "ringlog-";

/// Checks a ring name: `[A-Za-z0-9._-]{1,64}`.
pub fn validate_name(name: &str) -> Result<(), OpenError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(OpenError::InvalidName {
            name: name.to_owned(),
        })
    }
}

/// Where a ring lives: a name under /dev/shm, or an explicit file path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// `/dev/shm/ringlog-<name>`.
    Name(String),
    /// Any path (its directory should be on tmpfs for speed).
    Path(PathBuf),
}

impl Location {
    /// The file path, validating a name.
    pub fn path(&self) -> Result<PathBuf, OpenError> {
        match self {
            Location::Name(n) => {
                validate_name(n)?;
                Ok(Path::new(SHM_DIR).join(format!("{NAME_PREFIX}{n}")))
            }
            Location::Path(p) => Ok(p.clone()),
        }
    }

    /// How errors and logs name the ring.
    pub fn display_name(&self) -> String {
        match self {
            Location::Name(n) => n.clone(),
            Location::Path(p) => p.display().to_string(),
        }
    }
}

/// How to open or create a segment.
#[derive(Clone, Debug)]
pub struct SegmentOptions {
    /// Create the segment if it does not exist (default true: start order must not matter).
    pub create: bool,
    /// Data region size. When creating: the size to create (default 4 MiB). When opening an
    /// existing ring: if set, the ring must have exactly this capacity.
    pub capacity: Option<u64>,
    /// Largest payload, when creating (default a quarter of the capacity).
    pub max_record: Option<u64>,
    /// Registry slots, when creating.
    pub slots: Option<u32>,
    /// File mode when creating (default 0600).
    pub mode: u32,
    /// Group to give the file when creating (with a mode like 0660 to share with it).
    pub group: Option<u32>,
    /// Fault the whole mapping in at open (`MAP_POPULATE`, default true), so producers and the
    /// drain take no page faults on their hot paths. `stat` turns it off.
    pub populate: bool,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions {
            create: true,
            capacity: None,
            max_record: None,
            slots: None,
            mode: 0o600,
            group: None,
            populate: true,
        }
    }
}

/// An open, validated, mapped segment.
#[derive(Debug)]
pub struct Segment {
    ring: Ring<MappedMemory>,
    file: File,
    path: PathBuf,
    name: String,
    created: bool,
}

impl Segment {
    /// Opens the ring at `location`, creating it if allowed and absent.
    pub fn open(location: &Location, options: &SegmentOptions) -> Result<Segment, OpenError> {
        let path = location.path()?;
        let name = location.display_name();
        // A creator that lost the link race retries the open; a handful of rounds is plenty.
        for _ in 0..8 {
            match File::options().read(true).write(true).open(&path) {
                Ok(file) => return Self::validate(file, path, name, options),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if !options.create {
                        return Err(OpenError::NotFound { ring: name, path });
                    }
                    match Self::create(&path, &name, options)? {
                        Some(segment) => return Ok(segment),
                        None => continue, // someone else linked first: open theirs
                    }
                }
                Err(source) => {
                    return Err(OpenError::Io {
                        ring: name,
                        context: "cannot open",
                        path,
                        source,
                    })
                }
            }
        }
        Err(OpenError::Io {
            ring: name,
            context: "kept racing with other creators of",
            path,
            source: io::Error::from(io::ErrorKind::AlreadyExists),
        })
    }

    fn validate(
        file: File,
        path: PathBuf,
        name: String,
        options: &SegmentOptions,
    ) -> Result<Segment, OpenError> {
        let io_err = |context, source| OpenError::Io {
            ring: name.clone(),
            context,
            path: path.clone(),
            source,
        };
        let len = file.metadata().map_err(|e| io_err("cannot stat", e))?.len();
        if len < layout::HEADER_SIZE as u64 {
            let reason = LayoutError::TooShort {
                len,
                need: layout::HEADER_SIZE as u64,
            };
            return Err(OpenError::Invalid {
                ring: name,
                path,
                reason,
            });
        }
        let map = memmap2::MmapOptions::new()
            .len(len as usize)
            .map_raw(&file)
            .map_err(|e| io_err("cannot map", e))?;
        let ring = Ring::open(MappedMemory::new(map)).map_err(|reason| OpenError::Invalid {
            ring: name.clone(),
            path: path.clone(),
            reason,
        })?;
        if let Some(asked) = options.capacity {
            let found = ring.geometry().capacity;
            if found != asked {
                return Err(OpenError::CapacityMismatch {
                    ring: name,
                    found,
                    asked,
                });
            }
        }
        if options.populate {
            ring.mem().prefault();
        }
        Ok(Segment {
            ring,
            file,
            path,
            name,
            created: false,
        })
    }

    /// Builds a segment in an unnamed file and links it to `path`. `Ok(None)` when another
    /// creator linked first.
    fn create(
        path: &Path,
        name: &str,
        options: &SegmentOptions,
    ) -> Result<Option<Segment>, OpenError> {
        let geometry = Self::geometry(name, options)?;
        let len = geometry.segment_len();
        let file = Self::unnamed_file(path, name, options, len)?;
        let io_err = io_error(name, path);
        let map = memmap2::MmapOptions::new()
            .len(len as usize)
            .map_raw(&file)
            .map_err(|e| io_err("cannot map", e))?;
        let ring = Ring::create(
            MappedMemory::new(map),
            geometry,
            crate::clock::now_ns(),
            options.mode,
        )
        .map_err(|reason| OpenError::Invalid {
            ring: name.to_owned(),
            path: path.to_owned(),
            reason,
        })?;
        if options.populate {
            ring.mem().prefault();
        }
        match link_unnamed(&file, path) {
            Ok(()) => Ok(Some(Segment {
                ring,
                file,
                path: path.to_owned(),
                name: name.to_owned(),
                created: true,
            })),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(io_err("cannot link the new segment to", e)),
        }
    }

    /// The shape `options` ask for, with the defaults filled in, if it is a valid one.
    fn geometry(name: &str, options: &SegmentOptions) -> Result<Geometry, OpenError> {
        let capacity = options.capacity.unwrap_or(DEFAULT_CAPACITY);
        let geometry = Geometry {
            capacity,
            max_record: options
                .max_record
                .unwrap_or_else(|| layout::default_max_record(capacity)),
            slots: options.slots.unwrap_or(layout::DEFAULT_SLOTS),
        };
        geometry
            .validate()
            .map_err(|reason| OpenError::BadOptions {
                ring: name.to_owned(),
                reason,
            })?;
        Ok(geometry)
    }

    /// An unnamed file (`O_TMPFILE`) in `path`'s directory with the mode and group `options`
    /// ask for and `len` bytes reserved: a full tmpfs is an error now, not a SIGBUS later.
    fn unnamed_file(
        path: &Path,
        name: &str,
        options: &SegmentOptions,
        len: u64,
    ) -> Result<File, OpenError> {
        let io_err = io_error(name, path);
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let mode = Mode::from_raw_mode(options.mode);
        let fd = rfs::open(&dir, OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC, mode).map_err(
            |e| {
                io_err(
                    "cannot create an unnamed file (O_TMPFILE) next to",
                    e.into(),
                )
            },
        )?;
        let file = File::from(fd);
        // The umask may have narrowed the mode; the caller asked for exactly this one.
        rfs::fchmod(&file, mode).map_err(|e| io_err("cannot set the mode of", e.into()))?;
        if let Some(gid) = options.group {
            let gid = rfs::Gid::from_raw(gid);
            rfs::fchown(&file, None, Some(gid))
                .map_err(|e| io_err("cannot set the group of", e.into()))?;
        }
        match rfs::fallocate(&file, FallocateFlags::empty(), 0, len) {
            Ok(()) => Ok(file),
            Err(rustix::io::Errno::NOSPC) => Err(OpenError::NoSpace {
                ring: name.to_owned(),
                path: path.to_owned(),
                needed: len,
            }),
            Err(e) => Err(io_err("cannot reserve space (fallocate) for", e.into())),
        }
    }

    /// The ring protocol over this segment.
    pub fn ring(&self) -> &Ring<MappedMemory> {
        &self.ring
    }

    /// The segment file (its open file description carries this process's OFD locks).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The segment's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The ring's display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True if this call created the segment.
    pub fn created(&self) -> bool {
        self.created
    }

    /// Opens a second, independent open file description of this segment's file (its own OFD
    /// locks, e.g. for a child after `fork`): the file this process has mapped, never whatever
    /// now sits at its path. Locks taken on a file that replaced ours would tell a drain on our
    /// ring that our producers are dead while they still write into it.
    ///
    /// Reopens through `/proc/self/fd`, which names the open file itself (even when it was
    /// removed from its directory). Without `/proc` it opens the path and checks that it found
    /// the same file (device and inode); if the path now holds another file it fails with
    /// `NotFound`.
    pub fn reopen_file(&self) -> io::Result<File> {
        reopen_through_proc(&self.file).or_else(|_| reopen_by_path_if_same(&self.file, &self.path))
    }
}

/// A new open file description of `file`, through the magic link `/proc/self/fd/N`.
fn reopen_through_proc(file: &File) -> io::Result<File> {
    use std::os::fd::AsRawFd;
    let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
    File::options().read(true).write(true).open(proc_path)
}

/// A new open file description of the file at `path`, if it is still `file`.
fn reopen_by_path_if_same(file: &File, path: &Path) -> io::Result<File> {
    use std::os::unix::fs::MetadataExt;
    let reopened = File::options().read(true).write(true).open(path)?;
    let (ours, found) = (file.metadata()?, reopened.metadata()?);
    if (ours.dev(), ours.ino()) == (found.dev(), found.ino()) {
        Ok(reopened)
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            "the segment's file was replaced at its path (removed and created again)",
        ))
    }
}

/// What to say when `context` failed on ring `name`'s file at `path`.
fn io_error<'a>(
    name: &'a str,
    path: &'a Path,
) -> impl Fn(&'static str, io::Error) -> OpenError + 'a {
    move |context, source| OpenError::Io {
        ring: name.to_owned(),
        context,
        path: path.to_owned(),
        source,
    }
}

/// Links the unnamed file behind `file` to `path`; fails with `AlreadyExists` if taken.
fn link_unnamed(file: &File, path: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let proc_path: OsString = format!("/proc/self/fd/{}", file.as_raw_fd()).into();
    match rfs::linkat(
        rfs::CWD,
        &proc_path,
        rfs::CWD,
        path,
        AtFlags::SYMLINK_FOLLOW,
    ) {
        Ok(()) => Ok(()),
        // No /proc (a minimal container): AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH, try it.
        Err(rustix::io::Errno::NOENT) if !Path::new("/proc/self/fd").exists() => {
            rfs::linkat(file.as_fd(), "", rfs::CWD, path, AtFlags::EMPTY_PATH).map_err(Into::into)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn inode(file: &File) -> (u64, u64) {
        let m = file.metadata().unwrap();
        (m.dev(), m.ino())
    }

    #[test]
    fn reopening_by_path_refuses_a_file_that_replaced_ours() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring");
        let ours = File::create(&path).unwrap();
        assert_eq!(
            inode(&reopen_by_path_if_same(&ours, &path).unwrap()),
            inode(&ours)
        );
        std::fs::remove_file(&path).unwrap();
        let _theirs = File::create(&path).unwrap();
        let err = reopen_by_path_if_same(&ours, &path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        // Through /proc the very file comes back, though it has no name any more.
        assert_eq!(inode(&reopen_through_proc(&ours).unwrap()), inode(&ours));
    }
}
