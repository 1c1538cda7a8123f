//! Where the drain writes: a file opened with O_APPEND, or standard output. Owns the
//! descriptor, the current length and identity of the file (for the checkpoint), reopening
//! (SIGHUP, a file removed underneath) and truncating back a half-written batch. It never
//! decides what to write or when.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Where to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputSpec {
    /// Standard output (`--out -`).
    Stdout,
    /// A file, appended to (created 0644 if absent).
    File(PathBuf),
}

impl OutputSpec {
    /// Parses `--out`: `-` for stdout, else a path.
    pub fn parse(s: &str) -> OutputSpec {
        if s == "-" {
            OutputSpec::Stdout
        } else {
            OutputSpec::File(PathBuf::from(s))
        }
    }
}

/// Identity and length of the output file, as recorded in the checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileState {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Length in bytes.
    pub len: u64,
}

/// An open output.
#[derive(Debug)]
pub struct Output {
    spec: OutputSpec,
    file: Option<File>,
    state: Option<FileState>,
}

impl Output {
    /// Opens the output.
    pub fn open(spec: OutputSpec) -> io::Result<Output> {
        let mut out = Output {
            spec,
            file: None,
            state: None,
        };
        out.reopen()?;
        Ok(out)
    }

    /// (Re)opens the file at its path: after SIGHUP (logrotate moved it), or after an error.
    pub fn reopen(&mut self) -> io::Result<()> {
        if let OutputSpec::File(path) = &self.spec {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o644)
                .open(path)?;
            let meta = file.metadata()?;
            self.state = Some(FileState {
                dev: meta.dev(),
                ino: meta.ino(),
                len: meta.len(),
            });
            self.file = Some(file);
        }
        Ok(())
    }

    /// The output path, if a file.
    pub fn path(&self) -> Option<&Path> {
        match &self.spec {
            OutputSpec::File(p) => Some(p),
            OutputSpec::Stdout => None,
        }
    }

    /// Identity and length of the file as this drain last knew them (`None` for stdout).
    pub fn state(&self) -> Option<FileState> {
        self.state
    }

    /// Appends `bytes` whole. On error the file may hold a prefix of them: call
    /// [`Output::truncate_to`] with the length from before.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.file {
            Some(file) => {
                file.write_all(bytes)?;
                if let Some(s) = &mut self.state {
                    s.len += bytes.len() as u64;
                }
                Ok(())
            }
            None => {
                let mut out = io::stdout().lock();
                out.write_all(bytes)?;
                out.flush()
            }
        }
    }

    /// Flushes file data to stable storage.
    pub fn sync(&mut self) -> io::Result<()> {
        match &self.file {
            Some(f) => f.sync_data(),
            None => Ok(()),
        }
    }

    /// Cuts the file back to `len` bytes (undoing a half-written batch).
    pub fn truncate_to(&mut self, len: u64) -> io::Result<()> {
        if let Some(f) = &self.file {
            f.set_len(len)?;
            if let Some(s) = &mut self.state {
                s.len = len;
            }
        }
        Ok(())
    }

    /// Re-reads the file's current identity and length from the path (after a restart or an
    /// error); `None` if it does not exist.
    pub fn probe(&self) -> io::Result<Option<FileState>> {
        let Some(path) = self.path() else {
            return Ok(None);
        };
        match std::fs::metadata(path) {
            Ok(m) => Ok(Some(FileState {
                dev: m.dev(),
                ino: m.ino(),
                len: m.len(),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}
