//! RELP, the Reliable Event Logging Protocol that rsyslog speaks (`imrelp`, `omrelp`): the
//! client side, written from the protocol's specification. Owns the framing
//! (`TXNR SP COMMAND SP DATALEN [SP DATA] LF`), the `open` offer and its answer, transaction
//! numbers, and turning the receiver's `rsp` frames into acknowledged transaction numbers.
//!
//! It never decides what to resend or when a record is safe: the caller keeps every message
//! until its transaction number comes back acknowledged ([`crate::delivery`] does).

use std::io::{self, Read, Write};

/// What this client offers in `open`: protocol version 0 (what librelp speaks) and the one
/// command it uses.
const OPEN_OFFERS: &str = "relp_version=0\nrelp_software=ringlog\ncommands=syslog";
/// Transaction numbers run from 1 to this, then start again at 1 (the specification's limit).
const MAX_TXNR: u32 = 999_999_999;
/// Longest frame accepted from a receiver: its answers are short status lines.
const MAX_ANSWER: usize = 64 * 1024;

/// Why a RELP session failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum RelpError {
    /// The connection failed (reset, closed, timed out).
    Io(io::Error),
    /// The receiver refused the session or a message (`rsp` with a code other than 200).
    Refused {
        /// What was refused.
        what: Refused,
        /// The receiver's answer, e.g. `500 out of memory`.
        answer: String,
    },
    /// The receiver announced it is closing the session (`serverclose`).
    ServerClose,
    /// The receiver sent something that is not a RELP frame (what was wrong: the source).
    BadFrame(FrameError),
    /// The receiver sent a command other than `rsp` or `serverclose`.
    UnexpectedCommand {
        /// The command it sent.
        command: String,
    },
    /// The receiver's first answer was to another transaction than the session's `open`.
    OpenNotAnswered {
        /// The transaction it answered.
        answered: u32,
        /// The `open`'s transaction.
        open: u32,
    },
    /// The receiver acknowledged a transaction that is not waiting for an answer.
    AnswerNotInFlight {
        /// The transaction it acknowledged.
        txnr: u32,
    },
}

/// What a receiver refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refused {
    /// The session (its answer to `open`).
    Session,
    /// The `syslog` command (the session's offers did not include it).
    SyslogCommand,
    /// One message, by transaction number.
    Message(u32),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Session => f.write_str("the session"),
            Refused::SyslogCommand => f.write_str("the syslog command"),
            Refused::Message(txnr) => write!(f, "message {txnr}"),
        }
    }
}

impl std::fmt::Display for RelpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RelpError::Io(_) => write!(f, "the RELP connection failed"),
            RelpError::Refused { what, answer } => {
                write!(f, "the receiver refused {what}: {answer}")
            }
            RelpError::ServerClose => write!(f, "the receiver closed the RELP session"),
            RelpError::BadFrame(_) => write!(
                f,
                "the receiver does not speak RELP (is the port an imrelp listener?)"
            ),
            RelpError::UnexpectedCommand { command } => write!(
                f,
                "the receiver sent the command {command:?}; a RELP client expects only `rsp` \
                 and `serverclose`"
            ),
            RelpError::OpenNotAnswered { answered, open } => write!(
                f,
                "the receiver answered transaction {answered} instead of the session's open \
                 ({open})"
            ),
            RelpError::AnswerNotInFlight { txnr } => write!(
                f,
                "the receiver acknowledged transaction {txnr}, which is not in flight"
            ),
        }
    }
}

impl std::error::Error for RelpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RelpError::Io(e) => Some(e),
            RelpError::BadFrame(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for RelpError {
    fn from(e: io::Error) -> Self {
        RelpError::Io(e)
    }
}

impl From<FrameError> for RelpError {
    fn from(e: FrameError) -> Self {
        RelpError::BadFrame(e)
    }
}

/// A field of a frame's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderField {
    /// The transaction number: digits (a 32-bit number).
    Txnr,
    /// The command: letters.
    Command,
    /// The data's length: digits, at most 64 KiB (a receiver's answers are short).
    Length,
}

impl std::fmt::Display for HeaderField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HeaderField::Txnr => "transaction number",
            HeaderField::Command => "command",
            HeaderField::Length => "length",
        })
    }
}

/// What was wrong with a frame a receiver sent.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The header ended (a newline) before its length.
    HeaderCutShort {
        /// The frame's first bytes (at most 40, lossily decoded).
        seen: String,
    },
    /// A header field ran on for more than 32 bytes.
    FieldTooLong,
    /// A header field is not what the specification allows.
    BadField {
        /// Which field.
        field: HeaderField,
        /// The field as received (at most 40 bytes, lossily decoded).
        seen: String,
    },
    /// A frame without data has something after its length.
    EmptyFrameNotEnded,
    /// The length is not followed by a space and the data.
    DataNotAfterLength,
    /// The data is not followed by the trailing newline.
    NoTrailer,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::HeaderCutShort { seen } => write!(f, "frame header cut short: {seen:?}"),
            FrameError::FieldTooLong => write!(f, "a header field is longer than 32 bytes"),
            FrameError::BadField { field, seen } => write!(f, "bad {field} {seen:?}"),
            FrameError::EmptyFrameNotEnded => {
                write!(f, "an empty frame must end right after its length")
            }
            FrameError::DataNotAfterLength => write!(f, "a frame's data must follow its length"),
            FrameError::NoTrailer => write!(f, "frame does not end with a newline"),
        }
    }
}

impl std::error::Error for FrameError {}

/// What a session runs over: a byte stream that may be told how many bytes the next read
/// waits for.
pub trait ByteStream: Read + Write {
    /// The next read waits for at least `bytes` more bytes (at least 1): a stream that can
    /// sleep until that many arrived may do so; it never waits for more.
    fn await_bytes(&mut self, bytes: usize) {
        let _ = bytes;
    }
}

/// The fewest bytes an acknowledgement of transaction `txnr` takes on the wire:
/// `TXNR rsp 3 200` and a newline (the text after the code is optional).
pub fn shortest_acknowledgement(txnr: u32) -> usize {
    let digits = txnr.checked_ilog10().map_or(1, |d| d as usize + 1);
    digits + " rsp 3 200\n".len()
}

/// One parsed frame.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Transaction number (0 for the receiver's unsolicited `serverclose`).
    pub txnr: u32,
    /// Command: `rsp`, `serverclose`, ...
    pub command: &'a str,
    /// Data, possibly empty.
    pub data: &'a [u8],
}

/// Appends one frame.
pub fn encode(out: &mut Vec<u8>, txnr: u32, command: &str, data: &[u8]) {
    let mut n = itoa::Buffer::new();
    out.extend_from_slice(n.format(txnr).as_bytes());
    out.push(b' ');
    out.extend_from_slice(command.as_bytes());
    out.push(b' ');
    out.extend_from_slice(n.format(data.len()).as_bytes());
    if !data.is_empty() {
        out.push(b' ');
        out.extend_from_slice(data);
    }
    out.push(b'\n');
}

/// Parses the first frame of `buf`: `Ok(None)` if it is not complete yet, else the frame and
/// how many bytes it took.
pub fn parse(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    // The header: three fields, each ended by a space, except that an empty frame's length is
    // ended by the trailing newline.
    let mut at = 0;
    let mut field = |last: bool| -> Result<Option<(&[u8], u8)>, FrameError> {
        let rest = &buf[at..];
        match rest.iter().position(|&b| b == b' ' || b == b'\n') {
            Some(i) if rest[i] == b'\n' && !last => {
                Err(FrameError::HeaderCutShort { seen: show(buf) })
            }
            Some(i) => {
                at += i + 1;
                Ok(Some((&rest[..i], rest[i])))
            }
            None if rest.len() > 32 => Err(FrameError::FieldTooLong),
            None => Ok(None),
        }
    };
    let Some((txnr, _)) = field(false)? else {
        return Ok(None);
    };
    let Some((command, _)) = field(false)? else {
        return Ok(None);
    };
    let Some((len, len_end)) = field(true)? else {
        return Ok(None);
    };
    let txnr = std::str::from_utf8(txnr)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u32>().ok())
        .ok_or_else(|| bad(HeaderField::Txnr, txnr))?;
    let command = std::str::from_utf8(command)
        .ok()
        .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_alphabetic()))
        .ok_or_else(|| bad(HeaderField::Command, command))?;
    let len: usize = std::str::from_utf8(len)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .filter(|&n| n <= MAX_ANSWER)
        .ok_or_else(|| bad(HeaderField::Length, len))?;
    let header = at;
    if len == 0 {
        if len_end != b'\n' {
            return Err(FrameError::EmptyFrameNotEnded);
        }
        return Ok(Some((
            Frame {
                txnr,
                command,
                data: &[],
            },
            header,
        )));
    }
    if len_end != b' ' {
        return Err(FrameError::DataNotAfterLength);
    }
    let end = header + len + 1;
    if buf.len() < end {
        return Ok(None);
    }
    if buf[end - 1] != b'\n' {
        return Err(FrameError::NoTrailer);
    }
    Ok(Some((
        Frame {
            txnr,
            command,
            data: &buf[header..header + len],
        },
        end,
    )))
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(40)]).into_owned()
}

fn bad(field: HeaderField, seen: &[u8]) -> FrameError {
    FrameError::BadField {
        field,
        seen: show(seen),
    }
}

/// A RELP session over a connected stream (plain TCP or TLS).
#[derive(Debug)]
pub struct Session<S> {
    stream: S,
    next_txnr: u32,
    received: Vec<u8>,
    outgoing: Vec<u8>,
}

impl<S: ByteStream> Session<S> {
    /// Opens a session: offers `syslog`, and waits for the receiver to accept it.
    pub fn open(stream: S) -> Result<Session<S>, RelpError> {
        let mut session = Session {
            stream,
            next_txnr: 1,
            received: Vec::with_capacity(4096),
            outgoing: Vec::with_capacity(1 << 16),
        };
        let txnr = session.queue("open", OPEN_OFFERS.as_bytes());
        session.flush()?;
        let answer = session.next_answer(1)?;
        if answer.0 != txnr {
            return Err(RelpError::OpenNotAnswered {
                answered: answer.0,
                open: txnr,
            });
        }
        if !answer.1.starts_with("200") {
            return Err(RelpError::Refused {
                what: Refused::Session,
                answer: answer.1,
            });
        }
        if !answer.1.lines().any(|l| {
            l.strip_prefix("commands=")
                .is_some_and(|c| c.split(',').any(|c| c == "syslog"))
        }) {
            return Err(RelpError::Refused {
                what: Refused::SyslogCommand,
                answer: answer.1,
            });
        }
        Ok(session)
    }

    fn queue(&mut self, command: &str, data: &[u8]) -> u32 {
        let txnr = self.next_txnr;
        self.next_txnr = if txnr == MAX_TXNR { 1 } else { txnr + 1 };
        encode(&mut self.outgoing, txnr, command, data);
        txnr
    }

    /// Queues one syslog message (sent at the next [`Session::flush`]); returns its
    /// transaction number.
    pub fn queue_syslog(&mut self, message: &[u8]) -> u32 {
        self.queue("syslog", message)
    }

    /// Sends everything queued.
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.outgoing.is_empty() {
            self.stream.write_all(&self.outgoing)?;
            self.stream.flush()?;
            self.outgoing.clear();
        }
        Ok(())
    }

    /// Waits for the next answer: `(txnr, status text)`, not woken before `awaited` bytes (from
    /// the partial frame received so far on) could have arrived.
    fn next_answer(&mut self, awaited: usize) -> Result<(u32, String), RelpError> {
        loop {
            if let Some(answer) = self.take_answer()? {
                return Ok(answer);
            }
            // What was received is the start of the first awaited answer: less is missing.
            self.stream
                .await_bytes(awaited.saturating_sub(self.received.len()));
            let mut chunk = [0u8; 16 * 1024];
            let n = match self.stream.read(&mut chunk) {
                // A signal delivered to the drain (SIGHUP, SIGCHLD, ...) is no failure.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => other?,
            };
            if n == 0 {
                return Err(RelpError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the receiver closed the connection",
                )));
            }
            self.received.extend_from_slice(&chunk[..n]);
        }
    }

    /// Takes one complete answer from what was received, without reading.
    fn take_answer(&mut self) -> Result<Option<(u32, String)>, RelpError> {
        let Some((frame, used)) = parse(&self.received)? else {
            return Ok(None);
        };
        let answer = match frame.command {
            "rsp" => (
                frame.txnr,
                String::from_utf8_lossy(frame.data).trim().to_owned(),
            ),
            "serverclose" => return Err(RelpError::ServerClose),
            other => {
                return Err(RelpError::UnexpectedCommand {
                    command: other.to_owned(),
                })
            }
        };
        self.received.drain(..used);
        Ok(Some(answer))
    }

    /// Waits for at least one acknowledgement and returns every one already received, in order.
    /// `awaited`: bytes that must arrive before waking is worth it; at most the
    /// [`shortest_acknowledgement`]s of the answers the caller cannot go on without (1: wake
    /// for the first byte). A refusal (`rsp` other than 200) is an error naming the transaction.
    pub fn acknowledgements(
        &mut self,
        acked: &mut Vec<u32>,
        awaited: usize,
    ) -> Result<(), RelpError> {
        let first = self.next_answer(awaited)?;
        let mut answer = Some(first);
        while let Some((txnr, status)) = answer {
            if !status.starts_with("200") {
                return Err(RelpError::Refused {
                    what: Refused::Message(txnr),
                    answer: status,
                });
            }
            acked.push(txnr);
            answer = self.take_answer()?;
        }
        Ok(())
    }

    /// Closes the session politely (everything sent should be acknowledged first); errors are
    /// ignored, the connection is going away anyway.
    pub fn close(mut self) {
        let txnr = self.queue("close", b"");
        if self.flush().is_ok() {
            while let Ok((t, _)) = self.next_answer(1) {
                if t == txnr {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut out = Vec::new();
        encode(&mut out, 7, "syslog", b"<14>1 - h a - - - hello");
        encode(&mut out, 8, "close", b"");
        let (f, used) = parse(&out).unwrap().unwrap();
        assert_eq!(
            f,
            Frame {
                txnr: 7,
                command: "syslog",
                data: b"<14>1 - h a - - - hello"
            }
        );
        let (g, used2) = parse(&out[used..]).unwrap().unwrap();
        assert_eq!((g.txnr, g.command, g.data), (8, "close", &b""[..]));
        assert_eq!(used + used2, out.len());
    }

    #[test]
    fn incomplete_frames_wait_for_more_bytes() {
        let mut out = Vec::new();
        encode(&mut out, 12, "rsp", b"200 OK");
        for cut in 0..out.len() {
            assert_eq!(parse(&out[..cut]), Ok(None), "cut at {cut}");
        }
        assert!(parse(&out).unwrap().is_some());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b"x rsp 2 ok\n"[..],
            b"1 r5p 0\n",
            b"1 rsp 99999999999 \n",
            b"1 rsp 2 okX",
            b"1 rsp\n",
            b"1 rsp 0 \n",
            b"HTTP/1.1 400 Bad Request\r\n\r\n",
            &[0x16, 0x03, 0x01, 0x00, 0x10, b' ', b'\n'],
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn bad_frames_say_what_was_wrong() {
        let field = |field, seen: &str| {
            Err(FrameError::BadField {
                field,
                seen: seen.into(),
            })
        };
        assert_eq!(parse(b"x rsp 2 ok\n"), field(HeaderField::Txnr, "x"));
        assert_eq!(parse(b"1 r5p 0\n"), field(HeaderField::Command, "r5p"));
        assert_eq!(
            parse(b"1 rsp 99999999999 \n"),
            field(HeaderField::Length, "99999999999")
        );
        assert_eq!(parse(b"1 rsp 2 okX"), Err(FrameError::NoTrailer));
        assert_eq!(parse(b"1 rsp 0 \n"), Err(FrameError::EmptyFrameNotEnded));
        assert_eq!(parse(b"1 rsp 2\tok\n"), field(HeaderField::Length, "2\tok"));
        assert_eq!(
            parse(b"1 rsp\n"),
            Err(FrameError::HeaderCutShort {
                seen: "1 rsp\n".into()
            })
        );
        assert_eq!(parse(&[b'7'; 40]), Err(FrameError::FieldTooLong));
    }

    #[test]
    fn a_bad_frame_displays_the_hint_and_gives_what_was_wrong_as_its_source() {
        use std::error::Error;
        let e = RelpError::from(parse(b"HTTP/1.1 400 Bad Request\r\n\r\n").unwrap_err());
        assert_eq!(
            e.to_string(),
            "the receiver does not speak RELP (is the port an imrelp listener?)"
        );
        assert_eq!(
            e.source().map(|s| s.to_string()),
            Some("bad transaction number \"HTTP/1.1\"".to_owned())
        );
        let e = RelpError::AnswerNotInFlight { txnr: 9 };
        assert_eq!(
            e.to_string(),
            "the receiver acknowledged transaction 9, which is not in flight"
        );
        assert!(e.source().is_none());
    }

    /// A scripted receiver: what it answers, and what the client sent.
    struct Scripted {
        answers: io::Cursor<Vec<u8>>,
        sent: Vec<u8>,
    }
    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.answers.read(buf)
        }
    }
    impl ByteStream for Scripted {}
    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.sent.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn scripted(answers: &[(u32, &str, &str)]) -> Scripted {
        let mut out = Vec::new();
        for (t, c, d) in answers {
            encode(&mut out, *t, c, d.as_bytes());
        }
        Scripted {
            answers: io::Cursor::new(out),
            sent: Vec::new(),
        }
    }

    #[test]
    fn a_session_opens_sends_and_collects_acknowledgements() {
        let stream = scripted(&[
            (1, "rsp", "200 OK\nrelp_version=0\ncommands=syslog"),
            (2, "rsp", "200 OK"),
            (3, "rsp", "200 OK"),
        ]);
        let mut s = Session::open(stream).unwrap();
        assert_eq!(s.queue_syslog(b"a"), 2);
        assert_eq!(s.queue_syslog(b"b"), 3);
        s.flush().unwrap();
        let mut acked = Vec::new();
        s.acknowledgements(&mut acked, 1).unwrap();
        assert_eq!(acked, vec![2, 3]);
        let sent = String::from_utf8(s.stream.sent.clone()).unwrap();
        assert!(sent.starts_with("1 open "), "{sent}");
        assert!(sent.ends_with("2 syslog 1 a\n3 syslog 1 b\n"), "{sent}");
    }

    #[test]
    fn refusals_and_serverclose_are_errors() {
        let s = Session::open(scripted(&[(1, "rsp", "500 busy")]));
        assert!(matches!(s, Err(RelpError::Refused { .. })));
        let s = Session::open(scripted(&[(1, "rsp", "200 OK\ncommands=other")]));
        assert!(matches!(s, Err(RelpError::Refused { .. })));
        let mut s = Session::open(scripted(&[
            (1, "rsp", "200 OK\ncommands=syslog"),
            (0, "serverclose", ""),
        ]))
        .unwrap();
        s.queue_syslog(b"x");
        s.flush().unwrap();
        assert!(matches!(
            s.acknowledgements(&mut Vec::new(), 1),
            Err(RelpError::ServerClose)
        ));
        let mut s = Session::open(scripted(&[(1, "rsp", "200 OK\ncommands=syslog")])).unwrap();
        assert!(matches!(
            s.acknowledgements(&mut Vec::new(), 1),
            Err(RelpError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof
        ));
    }

    #[test]
    fn answers_out_of_turn_and_unknown_commands_are_typed_errors() {
        let s = Session::open(scripted(&[(5, "rsp", "200 OK\ncommands=syslog")]));
        assert!(matches!(
            s,
            Err(RelpError::OpenNotAnswered {
                answered: 5,
                open: 1
            })
        ));
        let mut s = Session::open(scripted(&[
            (1, "rsp", "200 OK\ncommands=syslog"),
            (2, "syslog", "x"),
        ]))
        .unwrap();
        assert!(matches!(
            s.acknowledgements(&mut Vec::new(), 1),
            Err(RelpError::UnexpectedCommand { command }) if command == "syslog"
        ));
        let mut s = Session::open(scripted(&[
            (1, "rsp", "200 OK\ncommands=syslog"),
            (2, "rsp", "500 no"),
        ]))
        .unwrap();
        let e = s.acknowledgements(&mut Vec::new(), 1).unwrap_err();
        assert!(matches!(
            e,
            RelpError::Refused {
                what: Refused::Message(2),
                ..
            }
        ));
        assert_eq!(e.to_string(), "the receiver refused message 2: 500 no");
    }

    #[test]
    fn transaction_numbers_wrap_to_one() {
        let mut s = Session::open(scripted(&[(1, "rsp", "200 OK\ncommands=syslog")])).unwrap();
        s.next_txnr = MAX_TXNR;
        assert_eq!(s.queue_syslog(b"x"), MAX_TXNR);
        assert_eq!(s.queue_syslog(b"y"), 1);
    }
}
