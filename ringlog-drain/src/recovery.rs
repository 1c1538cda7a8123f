//! Finishing the batch a previous drain was appending when it died, per the checkpoint
//! ([`ringlog_core::checkpoint`]): if the batch was marked written or the output holds all of
//! it, release it; if part, cut the part off and write it again; if none, write it again. The
//! file the batch went to is looked for at the output path, or renamed beside it (logrotate ran
//! while no drain did). When the checkpoint cannot say and the file is gone (moved to another
//! directory, compressed), the batch is written again and a line in the log says that its
//! records may appear twice.

use crate::drain::Drain;
use crate::events::{BatchFile, DrainEvent};
use crate::output::FileState;
use ringlog_core::{BatchIntent, OutputFile, Recovery};
use std::io;

impl Drain {
    pub(crate) fn recover(&mut self) -> io::Result<()> {
        let Some(intent) = self.ring().batch_in_flight() else {
            return Ok(());
        };
        let (found, file) = self.find_batch_file(&intent)?;
        let recovery = self.ring().recovery_verdict(|| Ok::<_, io::Error>(found))?;
        match recovery {
            Recovery::Clean => return Ok(()),
            Recovery::Written(intent) => {
                self.consumer.release_recovered();
                self.events.emit(DrainEvent::RecoveredWrittenBatch {
                    bytes: intent.bytes,
                    file,
                });
            }
            Recovery::HalfWritten { intent, written } => {
                match &file {
                    BatchFile::Renamed(p) => std::fs::OpenOptions::new()
                        .write(true)
                        .open(p)?
                        .set_len(intent.out_len)?,
                    _ => self.output_mut().truncate_to(intent.out_len)?,
                }
                self.events.emit(DrainEvent::RecoveredHalfWrittenBatch {
                    written,
                    bytes: intent.bytes,
                    file,
                });
            }
            Recovery::Unsure(intent) => {
                let output = self
                    .output_mut()
                    .path()
                    .map(|p| p.to_owned())
                    .unwrap_or_default();
                // In the log too, just before the batch written again.
                self.notify(DrainEvent::RecoveredBatchMayRepeat {
                    records: intent.records,
                    bytes: intent.bytes,
                    output,
                });
            }
            Recovery::Released | Recovery::Redo => {}
        }
        self.ring().finish_recovery(&recovery);
        self.output_mut().reopen()
    }

    /// The file the batch `intent` went to: at the output path, renamed beside it, or gone.
    fn find_batch_file(&self, intent: &BatchIntent) -> io::Result<(Option<OutputFile>, BatchFile)> {
        let file_of = |s: &FileState| OutputFile {
            dev: s.dev,
            ino: s.ino,
            len: s.len,
            born: s.born,
        };
        if let Some(s) = self.output().probe()? {
            if file_of(&s).is_file_of(intent) {
                return Ok((Some(file_of(&s)), BatchFile::AtPath));
            }
        }
        let renamed = self
            .output()
            .path()
            .and_then(|p| crate::output::find_renamed(p, |s| file_of(s).is_file_of(intent)));
        Ok(match renamed {
            Some((path, s)) => (Some(file_of(&s)), BatchFile::Renamed(path)),
            None => (None, BatchFile::Gone),
        })
    }
}
