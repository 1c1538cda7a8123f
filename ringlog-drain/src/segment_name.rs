//! The name of the ring's segment while a drain runs: noticing that it was removed or replaced
//! under the running ring (a cleanup script, a tmpfiles rule, an operator), and putting it back.
//!
//! A file whose last name is gone cannot be linked again (Linux refuses `linkat` from
//! `/proc/self/fd` once the link count is 0), so the drain keeps a spare hard link to its
//! segment beside it, `.<file name>.drain` (e.g. `/dev/shm/.ringlog-app.drain`), from start to
//! clean exit. With it, a removed name is linked again from the drain's descriptor. A spare left
//! by a drain that was killed tells the next drain which segment its predecessor drained, so a
//! segment removed or replaced while no drain ran is still found and emptied.
//!
//! This module owns the spare link and the name check; it never reads or writes the segment.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What a look at the segment's path found.
#[derive(Debug)]
pub enum NameCheck {
    /// The path still names our segment.
    Intact,
    /// The path was gone; it names our segment again.
    PutBack,
    /// The path names another file now (a new segment, created after ours was removed).
    Replaced,
    /// The path is gone and could not be linked again (the cause).
    Lost(io::Error),
}

/// The spare link beside the segment at `segment`: `.<file name>.drain` in the same directory.
pub fn spare_path(segment: &Path) -> PathBuf {
    let name = segment
        .file_name()
        .map_or_else(|| "ringlog".into(), |n| n.to_string_lossy().into_owned());
    segment.with_file_name(format!(".{name}.drain"))
}

/// The segment a previous drain of `segment` left behind, if its spare link names another file
/// than the one at `segment` now (the segment was removed or replaced while no drain ran).
pub fn left_behind(segment: &Path) -> Option<PathBuf> {
    let spare = spare_path(segment);
    let kept = std::fs::metadata(&spare).ok()?;
    match std::fs::metadata(segment) {
        Ok(now) if (now.dev(), now.ino()) == (kept.dev(), kept.ino()) => None,
        _ => Some(spare),
    }
}

/// Removes the spare link at `spare` (after its segment was emptied).
pub fn forget(spare: &Path) {
    let _ = std::fs::remove_file(spare);
}

/// The drain's hold on its segment's name.
#[derive(Debug)]
pub struct SegmentName {
    path: PathBuf,
    spare: PathBuf,
    id: (u64, u64),
}

impl SegmentName {
    /// Makes the spare link to `file`, the segment at `path`, replacing a stale one.
    pub fn hold(path: &Path, file: &File) -> io::Result<SegmentName> {
        let meta = file.metadata()?;
        let name = SegmentName {
            path: path.to_owned(),
            spare: spare_path(path),
            id: (meta.dev(), meta.ino()),
        };
        match std::fs::metadata(&name.spare) {
            Ok(m) if (m.dev(), m.ino()) == name.id => {}
            Ok(_) => {
                std::fs::remove_file(&name.spare)?;
                link_descriptor(file, &name.spare)?;
            }
            Err(_) => link_descriptor(file, &name.spare)?,
        }
        Ok(name)
    }

    /// The segment's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Looks at the path and puts our segment back if the name is free.
    pub fn check(&self, file: &File) -> NameCheck {
        match std::fs::metadata(&self.path) {
            Ok(m) if (m.dev(), m.ino()) == self.id => NameCheck::Intact,
            Ok(_) => NameCheck::Replaced,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match link_descriptor(file, &self.path) {
                    Ok(()) => NameCheck::PutBack,
                    // Someone created a new segment there in between.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => NameCheck::Replaced,
                    Err(e) => NameCheck::Lost(e),
                }
            }
            // Cannot tell (permissions changed?): the next check will.
            Err(_) => NameCheck::Intact,
        }
    }

    /// On a clean stop: the spare link goes (nothing is left behind for a next drain to find).
    pub fn release(self) {
        if std::fs::metadata(&self.spare).is_ok_and(|m| (m.dev(), m.ino()) == self.id) {
            forget(&self.spare);
        }
    }
}

/// Links the open `file` at `to` through `/proc/self/fd` (works while the file has a name).
fn link_descriptor(file: &File, to: &Path) -> io::Result<()> {
    let from = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
    let to = CString::new(to.as_os_str().as_bytes())?;
    // SAFETY: both are valid NUL-terminated paths for the duration of the call.
    let r = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_name_is_put_back_while_the_spare_holds_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ringlog-x");
        std::fs::write(&path, b"segment").unwrap();
        let file = File::open(&path).unwrap();
        let name = SegmentName::hold(&path, &file).unwrap();
        assert!(matches!(name.check(&file), NameCheck::Intact));
        assert_eq!(left_behind(&path), None);
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(name.check(&file), NameCheck::PutBack));
        assert_eq!(std::fs::read(&path).unwrap(), b"segment");
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"another").unwrap();
        assert!(matches!(name.check(&file), NameCheck::Replaced));
        assert_eq!(left_behind(&path), Some(spare_path(&path)));
        name.release();
        assert!(!spare_path(&path).exists());
    }
}
