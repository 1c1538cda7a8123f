//! Finishing the batch a previous drain was appending when it died, per the checkpoint
//! ([`ringlog_core::checkpoint`]): if the output holds all of it, release it; if part, cut the
//! part off and write it again; if none, write it again. The file the batch went to is looked
//! for at the output path, or renamed beside it (logrotate ran while no drain did).

use crate::drain::Drain;
use crate::events::DrainEvent;
use ringlog_core::{OutputFile, Recovery};
use std::io;
use std::path::PathBuf;

impl Drain {
    pub(crate) fn recover(&mut self) -> io::Result<()> {
        let ring = self.consumer.ring();
        let output = &self.output;
        // Where the batch's file was found when it is no longer at the output path.
        let mut renamed: Option<PathBuf> = None;
        let recovery = ring.recovery_verdict(|| -> io::Result<Option<OutputFile>> {
            let Some(intent) = ring.batch_in_flight() else {
                return Ok(None);
            };
            let (dev, ino) = (intent.dev, intent.ino);
            Ok(match output.probe()? {
                Some(s) if (s.dev, s.ino) == (dev, ino) => Some(OutputFile {
                    dev,
                    ino,
                    len: s.len,
                }),
                _ => output
                    .path()
                    .and_then(|p| crate::output::find_renamed(p, dev, ino))
                    .map(|(path, len)| {
                        renamed = Some(path);
                        OutputFile { dev, ino, len }
                    }),
            })
        })?;
        match recovery {
            Recovery::Clean => return Ok(()),
            Recovery::Written(intent) => {
                self.consumer.release_recovered();
                self.events.emit(DrainEvent::RecoveredWrittenBatch {
                    bytes: intent.bytes,
                    renamed,
                });
            }
            Recovery::HalfWritten { intent, written } => {
                match &renamed {
                    None => self.output.truncate_to(intent.out_len)?,
                    Some(p) => std::fs::OpenOptions::new()
                        .write(true)
                        .open(p)?
                        .set_len(intent.out_len)?,
                }
                self.events.emit(DrainEvent::RecoveredHalfWrittenBatch {
                    written,
                    bytes: intent.bytes,
                    renamed,
                });
            }
            Recovery::Released | Recovery::Redo => {}
        }
        self.ring().finish_recovery(&recovery);
        self.output.reopen()
    }
}
