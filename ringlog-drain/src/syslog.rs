//! Forwarding to a syslog receiver (rsyslog, syslog-ng, Vector, Fluent Bit): records become
//! RFC 5424 messages, framed by octet counting (RFC 6587 over TCP, RFC 5425 over TLS), one
//! datagram each over UDP, or one RELP transaction each ([`crate::delivery`]). Owns the message
//! format, the destination URLs and the connection; retries are the drain loop's.
//!
//! What each transport promises: RELP (`relp://`, `relp+tls://`) releases a batch only once the
//! receiver acknowledged every message of it: nothing is lost, and only messages sent but not
//! acknowledged when a connection broke are sent twice (counted). Plain TCP and TLS are best
//! effort: a successful write only means the bytes reached the local kernel, so what is in
//! flight when the receiver dies may be lost; the drain then says so in-band
//! (`ringlog: forwarding to X was interrupted; up to N records may be lost`). UDP may lose
//! messages under load, as UDP does, and cannot tell.

use crate::connection::Connection;
use crate::delivery::{Delivery, Progress};
use crate::events::{DeliveryEvent, DrainEvent, Events};
use crate::forward_status::StatusBoard;
use crate::relp_journal::{self, Journal, Resume};
use crate::tls::{TlsClient, TlsOptions, TlsSetupError};
use ringlog_core::{Level, RecordMeta};
use std::io::{self, Write};
use std::net::UdpSocket;
use std::path::PathBuf;

/// Transport to the receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP with octet-counting framing (`syslog+tcp://`).
    Tcp,
    /// One UDP datagram per message (`syslog+udp://`).
    Udp,
    /// TLS with octet-counting framing, RFC 5425 (`syslog+tls://`).
    Tls,
    /// RELP over TCP (`relp://`).
    Relp,
    /// RELP over TLS (`relp+tls://`).
    RelpTls,
}

impl Transport {
    /// The URL scheme.
    pub fn scheme(self) -> &'static str {
        match self {
            Transport::Tcp => "syslog+tcp",
            Transport::Udp => "syslog+udp",
            Transport::Tls => "syslog+tls",
            Transport::Relp => "relp",
            Transport::RelpTls => "relp+tls",
        }
    }

    /// Whether the receiver acknowledges each message.
    pub fn is_relp(self) -> bool {
        matches!(self, Transport::Relp | Transport::RelpTls)
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(self) -> bool {
        matches!(self, Transport::Tls | Transport::RelpTls)
    }
}

/// A syslog destination parsed from `syslog+tcp://`, `syslog+udp://`, `syslog+tls://`,
/// `relp://` or `relp+tls://` followed by `HOST:PORT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    /// How to reach it.
    pub transport: Transport,
    /// `HOST:PORT`.
    pub address: String,
    /// Certificates and name for the TLS transports.
    pub tls: TlsOptions,
    /// RELP: messages sent ahead of their acknowledgements.
    pub window: usize,
    /// The ring's segment, when the drain writes to this destination directly: a RELP output
    /// keeps its journal ([`crate::relp_journal`]) and publishes its figures for `stat` beside it.
    pub beside: Option<PathBuf>,
}

impl Destination {
    /// Parses an `--out` or `--forward` value; `None` if it is not a syslog or RELP URL.
    pub fn parse(s: &str) -> Option<Destination> {
        let transports = [
            Transport::Tcp,
            Transport::Udp,
            Transport::Tls,
            Transport::Relp,
            Transport::RelpTls,
        ];
        let (transport, rest) = transports.into_iter().find_map(|t| {
            let rest = s.strip_prefix(t.scheme())?.strip_prefix("://")?;
            Some((t, rest))
        })?;
        Some(Destination {
            transport,
            address: rest.trim_end_matches('/').to_owned(),
            tls: TlsOptions::default(),
            window: crate::delivery::DEFAULT_WINDOW,
            beside: None,
        })
    }

    /// The destination as a URL.
    pub fn url(&self) -> String {
        format!("{}://{}", self.transport.scheme(), self.address)
    }

    /// The host part of the address (what the receiver's certificate must name by default).
    pub fn host(&self) -> &str {
        self.address
            .rsplit_once(':')
            .map_or(self.address.as_str(), |(h, _)| h)
    }

    /// The TLS client for a TLS transport (`None` for the others).
    pub fn tls_client(&self) -> Result<Option<TlsClient>, TlsSetupError> {
        if !self.transport.is_tls() {
            return Ok(None);
        }
        TlsClient::new(&self.tls, self.host()).map(Some)
    }
}

/// RFC 5424 severity of a level (records without one are `info`).
pub fn severity(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info | Level::None => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// Formats RFC 5424 messages with octet-counting frames.
#[derive(Debug)]
pub struct MessageFormat {
    hostname: String,
    app_name: String,
    facility: u8,
}

impl MessageFormat {
    /// Messages from this host, with `app_name` (the ring's name) unless a record has a target.
    pub fn new(app_name: &str) -> MessageFormat {
        let hostname = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        MessageFormat {
            hostname: header_field(hostname.as_bytes(), 255),
            app_name: header_field(app_name.as_bytes(), 48),
            facility: 1,
        }
    }

    /// Appends one framed message: `LEN SP <PRI>1 TIMESTAMP HOST APP PROCID - - MSG`.
    pub fn record(
        &self,
        out: &mut Vec<u8>,
        meta: &RecordMeta,
        target: &[u8],
        message: &[u8],
        timestamp: &[u8],
    ) {
        let mut msg = Vec::with_capacity(96 + message.len());
        let pri = self.facility * 8 + severity(meta.level);
        let _ = write!(msg, "<{pri}>1 ");
        msg.extend_from_slice(timestamp);
        msg.push(b' ');
        msg.extend_from_slice(self.hostname.as_bytes());
        msg.push(b' ');
        if target.is_empty() {
            msg.extend_from_slice(self.app_name.as_bytes());
        } else {
            msg.extend_from_slice(header_field(target, 48).as_bytes());
        }
        let _ = write!(msg, " {} - - ", meta.pid);
        msg.extend_from_slice(message.strip_suffix(b"\n").unwrap_or(message));
        let _ = write!(out, "{} ", msg.len());
        out.extend_from_slice(&msg);
    }
}

impl MessageFormat {
    /// Appends one unframed message carrying a line of the local log: facility user, severity
    /// info, no timestamp of its own (the line has one in the text and json formats).
    pub fn line(&self, out: &mut Vec<u8>, line: &[u8]) {
        let _ = write!(
            out,
            "<{}>1 - {} {} - - - ",
            self.facility * 8 + 6,
            self.hostname,
            self.app_name
        );
        out.extend_from_slice(line.strip_suffix(b"\n").unwrap_or(line));
    }

    /// Appends one framed notice from the drain itself.
    pub fn notice(&self, out: &mut Vec<u8>, text: &str) {
        let msg = format!(
            "<{}>1 - {} ringlog-drain {} - - {text}",
            self.facility * 8 + 4,
            self.hostname,
            std::process::id()
        );
        let _ = write!(out, "{} {msg}", msg.len());
    }
}

/// A header field: printable ASCII without spaces, at most `max` bytes, `-` if empty.
fn header_field(bytes: &[u8], max: usize) -> String {
    let s: String = bytes
        .iter()
        .filter(|b| b.is_ascii_graphic())
        .take(max)
        .map(|&b| b as char)
        .collect();
    if s.is_empty() {
        "-".to_owned()
    } else {
        s
    }
}

/// A connection to the receiver, made on first use and remade after an error.
#[derive(Debug)]
pub struct Sink {
    destination: Destination,
    tls: Option<TlsClient>,
    stream: Option<Connection>,
    udp: Option<UdpSocket>,
    relp: Option<Delivery>,
    /// TCP and TLS: records sent on this connection that may not have reached the receiver
    /// (the kernel had not confirmed them, plus the last batch it had).
    at_risk: u64,
    /// Records of the last batch sent.
    last_batch: u64,
    /// TCP and TLS: a connection broke with this many records at risk; said in-band first
    /// thing on the next connection.
    interrupted: Option<u64>,
    /// RELP: how far the batch in flight got, so that sending it again (after a failure, or by
    /// the next drain after a SIGKILL) skips what was acknowledged and counts what was resent.
    journal: Journal,
    /// RELP: ring position of the batch the drain is about to send ([`Sink::begin_batch`]).
    batch_start: Option<u64>,
    /// RELP: the last send was acknowledged whole, so the drain released it: the journal can
    /// go when the drain stops.
    delivered: bool,
    /// RELP: where its figures are published for `stat`, and its index there.
    status: Option<(StatusBoard, usize)>,
    notices: MessageFormat,
    events: Events,
}

impl Sink {
    /// A sink for `destination` (connects lazily) that tells `events` what the operator should
    /// know; fails if its TLS settings are wrong.
    pub fn new(destination: Destination, events: Events) -> Result<Sink, TlsSetupError> {
        let tls = destination.tls_client()?;
        let relp = destination.transport.is_relp().then(|| {
            let address = destination.address.clone();
            Delivery::new(address, tls.clone(), destination.window, events.clone())
        });
        let beside = destination
            .beside
            .as_deref()
            .filter(|_| destination.transport.is_relp());
        let journal = match beside {
            None => Journal::in_memory(),
            Some(segment) => {
                let path = relp_journal::path_for(segment, &destination.address);
                Journal::open(&path).unwrap_or_else(|error| {
                    let event = DeliveryEvent::JournalUnavailable { path, error };
                    events.emit(DrainEvent::Delivery(event));
                    Journal::in_memory()
                })
            }
        };
        let status = beside.map(|segment| {
            let board = StatusBoard::new(crate::forward_status::path_for(segment));
            let index = board.register(&destination.url());
            (board, index)
        });
        Ok(Sink {
            destination,
            tls,
            stream: None,
            udp: None,
            relp,
            at_risk: 0,
            last_batch: 0,
            interrupted: None,
            journal,
            batch_start: None,
            delivered: false,
            status,
            notices: MessageFormat::new("ringlog-drain"),
            events,
        })
    }

    /// Checks the address resolves, so a typo fails at start-up.
    pub fn check(&self) -> io::Result<()> {
        crate::connection::resolve(&self.destination.address).map(|_| ())
    }

    /// RELP: what was sent, acknowledged and sent again so far.
    pub fn counts(&self) -> Option<crate::delivery::Counts> {
        self.relp.as_ref().map(Delivery::counts)
    }

    /// The next batch starts at ring position `start` (RELP keeps its progress by position).
    pub fn begin_batch(&mut self, start: u64) {
        self.batch_start = Some(start);
    }

    /// Sends a batch of framed messages; over RELP, returns once the receiver acknowledged
    /// every one. On error the connection is dropped (and remade on the next call).
    pub fn send(&mut self, framed: &[u8]) -> io::Result<()> {
        let result = match self.destination.transport {
            Transport::Tcp | Transport::Tls => self.send_stream(framed),
            Transport::Udp => self.send_udp(framed),
            Transport::Relp | Transport::RelpTls => self.send_relp(framed),
        };
        if result.is_err() {
            if self.stream.take().is_some() && self.at_risk > 0 {
                let n = self.at_risk + self.interrupted.unwrap_or(0);
                let url = self.destination.url();
                self.events
                    .emit(DrainEvent::Delivery(DeliveryEvent::Interrupted {
                        url,
                        up_to: n,
                    }));
                self.interrupted = Some(n);
            }
            self.at_risk = 0;
            self.last_batch = 0;
            self.udp = None;
        }
        result
    }

    fn send_stream(&mut self, framed: &[u8]) -> io::Result<()> {
        if self.stream.is_none() {
            let mut stream = Connection::open(&self.destination.address, self.tls.as_ref())?;
            if let Some(n) = self.interrupted {
                let mut notice = Vec::new();
                self.notices.notice(
                    &mut notice,
                    &format!(
                        "ringlog: forwarding to {} was interrupted; up to {n} records may be lost",
                        self.destination.url()
                    ),
                );
                stream.write_all(&notice)?;
                self.interrupted = None;
            }
            self.stream = Some(stream);
        }
        let stream = self.stream.as_mut().expect("connected");
        // What the receiving kernel confirmed is out of danger, except the last batch, which
        // the receiver may not have read yet.
        if stream.unacknowledged_bytes() == Some(0) {
            self.at_risk = self.last_batch;
        }
        let records = frames(framed).count() as u64;
        self.at_risk += records;
        self.last_batch = records;
        stream.write_all(framed)?;
        stream.flush()
    }

    fn send_relp(&mut self, framed: &[u8]) -> io::Result<()> {
        let all: Vec<&[u8]> = frames(framed).collect();
        let (resume, mut acked_print, mut journal_error) = self.resume_batch(&all);
        let delivery = self.relp.as_mut().expect("a RELP sink has a delivery");
        let journal = &mut self.journal;
        let rest = &all[resume.skip..];
        let skip = resume.skip as u64;
        let mut acked = 0;
        let status = &self.status;
        let before = delivery.counts();
        let mut sent = 0;
        let result = delivery.deliver(rest, |progress| {
            let written = match progress {
                Progress::Sending(n) => {
                    sent = n;
                    if let Some((board, index)) = status {
                        board.update(*index, false, |s| {
                            s.sent = before.sent + n as u64;
                            s.pending = (n - acked) as u64;
                        });
                    }
                    journal.sending(skip + n as u64)
                }
                Progress::Acknowledged(n) => {
                    acked_print = rest[acked..n]
                        .iter()
                        .fold(acked_print, |h, m| relp_journal::fingerprint(h, m));
                    acked = n;
                    if let Some((board, index)) = status {
                        board.update(*index, false, |s| {
                            s.acknowledged = before.acknowledged + n as u64;
                            s.pending = (sent - n) as u64;
                            s.last_ack_ns = ringlog_core::clock::now_ns();
                        });
                    }
                    journal.acknowledged(skip + n as u64, acked_print)
                }
            };
            if let Err(e) = written {
                journal_error.get_or_insert(e);
            }
        });
        if let Some(e) = journal_error {
            self.events
                .emit(DrainEvent::Delivery(DeliveryEvent::JournalFailed(e)));
        }
        self.publish_result(&result);
        self.delivered = result.is_ok();
        result.map_err(|e| io::Error::other(with_causes(&e)))
    }

    /// RELP: where the batch about to be sent resumes (its first messages may have been
    /// acknowledged before, by this drain or a crashed one: the journal says), with the
    /// fingerprint of those messages and any failure to journal the batch's start.
    fn resume_batch(&mut self, all: &[&[u8]]) -> (Resume, u64, Option<io::Error>) {
        // The position belongs to one append: a later append without one is not that batch.
        let Some(start) = self.batch_start.take() else {
            return (Resume::default(), relp_journal::EMPTY, None);
        };
        let resume = self.journal.resume(start, all);
        let acked_print = all[..resume.skip]
            .iter()
            .fold(relp_journal::EMPTY, |h, m| relp_journal::fingerprint(h, m));
        let journal_error = self.journal.begin(start, resume, acked_print).err();
        let delivery = self.relp.as_mut().expect("a RELP sink has a delivery");
        delivery.assume_unacknowledged(resume.resend);
        if resume.skip > 0 && delivery.counts().sent == 0 {
            self.events
                .emit(DrainEvent::Delivery(DeliveryEvent::Resumed {
                    address: self.destination.address.clone(),
                    acknowledged: resume.skip,
                }));
        }
        (resume, acked_print, journal_error)
    }

    /// RELP: publishes the batch's outcome for `stat` at once: the drain may go idle now, and
    /// `stat` must not show a batch in flight that was delivered (a rename in /dev/shm, once per
    /// batch).
    fn publish_result(&self, result: &Result<(), crate::delivery::DeliveryError>) {
        let (Some((board, index)), Some(delivery)) = (&self.status, &self.relp) else {
            return;
        };
        let counts = delivery.counts();
        board.update(*index, true, |s| {
            s.sent = counts.sent;
            s.acknowledged = counts.acknowledged;
            s.resent = counts.resent;
            match result {
                Ok(()) => {
                    s.pending = 0;
                    s.last_error = None;
                }
                Err(e) => {
                    s.pending = e.unacknowledged as u64;
                    s.last_error = Some(with_causes(e));
                }
            }
        });
    }

    fn send_udp(&mut self, framed: &[u8]) -> io::Result<()> {
        if self.udp.is_none() {
            let addr = crate::connection::resolve(&self.destination.address)?;
            let bind = if addr.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let socket = UdpSocket::bind(bind)?;
            socket.connect(addr)?;
            self.udp = Some(socket);
        }
        let socket = self.udp.as_ref().expect("bound");
        for message in frames(framed) {
            socket.send(message)?;
        }
        Ok(())
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(relp) = &mut self.relp {
            relp.close();
            let totals = relp.totals();
            self.events
                .emit(DrainEvent::Delivery(DeliveryEvent::Closed(totals)));
        }
        if self.delivered && !std::thread::panicking() {
            // A clean stop with the last batch delivered and released: nothing is left for a
            // later drain to skip or count. Failing to delete it is harmless: ring positions
            // only grow, so its batch position never comes again in this ring, and a ring made
            // anew fails its fingerprint.
            let _ = std::mem::replace(&mut self.journal, Journal::in_memory()).remove();
        }
    }
}

/// An error's text followed by its causes, for the drain's one-line reports.
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text += &format!(": {s}");
        source = s.source();
    }
    text
}

/// Byte ranges of the messages in octet-counted frames (`LEN SP MSG`...).
fn frame_spans(framed: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let rest = &framed[at..];
        let space = rest.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
        let start = at + space + 1;
        let end = start + len;
        if end > framed.len() {
            return None;
        }
        at = end;
        Some((start, end))
    })
}

/// Splits octet-counted frames (`LEN SP MSG`...) into their messages.
pub fn frames(framed: &[u8]) -> impl Iterator<Item = &[u8]> {
    frame_spans(framed).map(move |(a, b)| &framed[a..b])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse() {
        let d = Destination::parse("syslog+tcp://127.0.0.1:514").unwrap();
        assert_eq!(
            (d.transport, d.address.as_str()),
            (Transport::Tcp, "127.0.0.1:514")
        );
        for (url, transport) in [
            ("syslog+tls://logs:6514", Transport::Tls),
            ("relp://logs:2514", Transport::Relp),
            ("relp+tls://logs:2514", Transport::RelpTls),
        ] {
            let d = Destination::parse(url).unwrap();
            assert_eq!(d.transport, transport);
            assert_eq!(d.url(), url);
            assert_eq!(d.host(), "logs");
        }
        assert_eq!(Destination::parse("relp+tcp://x:1"), None);
        assert_eq!(
            Destination::parse("syslog+udp://logs:5514/")
                .unwrap()
                .address,
            "logs:5514"
        );
        assert_eq!(Destination::parse("/var/log/x.log"), None);
    }

    #[test]
    fn messages_are_rfc5424_with_octet_counting() {
        let f = MessageFormat {
            hostname: "host1".into(),
            app_name: "myring".into(),
            facility: 1,
        };
        let meta = RecordMeta {
            pid: 42,
            level: Level::Warn,
            ..Default::default()
        };
        let mut out = Vec::new();
        f.record(
            &mut out,
            &meta,
            b"",
            b"disk almost full\n",
            b"2026-01-02T03:04:05.000000006Z",
        );
        f.record(
            &mut out,
            &meta,
            b"db pool",
            b"x",
            b"2026-01-02T03:04:05.000000007Z",
        );
        let msgs: Vec<&[u8]> = frames(&out).collect();
        assert_eq!(msgs.len(), 2);
        assert_eq!(
            msgs[0],
            b"<12>1 2026-01-02T03:04:05.000000006Z host1 myring 42 - - disk almost full"
        );
        assert_eq!(
            msgs[1],
            b"<12>1 2026-01-02T03:04:05.000000007Z host1 dbpool 42 - - x"
        );
        assert!(out.starts_with(format!("{} <12>1", msgs[0].len()).as_bytes()));
    }
}
