//! Liveness by open-file-description (OFD) byte locks on the segment file.
//!
//! A producer write-locks one byte per registry slot it owns; the drain write-locks
//! [`DRAIN_LOCK_BYTE`](crate::layout::DRAIN_LOCK_BYTE). The kernel drops the locks when the
//! owner's last descriptor for that open file closes, i.e. when it dies, however it dies. Unlike
//! a pid, this cannot be fooled by pid reuse or by processes in other pid namespaces sharing
//! /dev/shm. This module makes `fcntl` calls and nothing else.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

fn flock(kind: libc::c_short, byte: u64) -> libc::flock {
    // SAFETY: `flock` is a plain C struct; all-zero is a valid value (and `l_pid` must be 0 for
    // OFD locks).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = byte as libc::off_t;
    fl.l_len = 1;
    fl
}

fn fcntl(fd: BorrowedFd<'_>, cmd: libc::c_int, fl: &mut libc::flock) -> io::Result<()> {
    // SAFETY: `fd` is a valid open descriptor for the borrow; `fl` is a valid `flock`.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), cmd, fl as *mut libc::flock) };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Tries to write-lock `byte` through `fd`'s open file description without blocking.
/// `Ok(true)`: locked (or already held through this description); `Ok(false)`: someone else
/// holds it.
pub fn try_lock(fd: BorrowedFd<'_>, byte: u64) -> io::Result<bool> {
    let mut fl = flock(libc::F_WRLCK as libc::c_short, byte);
    match fcntl(fd, libc::F_OFD_SETLK, &mut fl) {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Releases a lock taken with [`try_lock`] through the same open file description.
pub fn unlock(fd: BorrowedFd<'_>, byte: u64) -> io::Result<()> {
    let mut fl = flock(libc::F_UNLCK as libc::c_short, byte);
    fcntl(fd, libc::F_OFD_SETLK, &mut fl)
}

/// True if some other open file description holds a lock on `byte` (its owner is alive).
pub fn is_locked(fd: BorrowedFd<'_>, byte: u64) -> io::Result<bool> {
    let mut fl = flock(libc::F_WRLCK as libc::c_short, byte);
    fcntl(fd, libc::F_OFD_GETLK, &mut fl)?;
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn ofd_locks_conflict_between_descriptions_and_release_on_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg");
        std::fs::write(&path, [0u8; 64]).unwrap();
        let a = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let b = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        assert!(try_lock(a.as_fd(), 7).unwrap());
        assert!(is_locked(b.as_fd(), 7).unwrap());
        assert!(!try_lock(b.as_fd(), 7).unwrap());
        assert!(!is_locked(b.as_fd(), 8).unwrap());
        drop(a);
        assert!(!is_locked(b.as_fd(), 7).unwrap());
        assert!(try_lock(b.as_fd(), 7).unwrap());
        unlock(b.as_fd(), 7).unwrap();
    }
}
