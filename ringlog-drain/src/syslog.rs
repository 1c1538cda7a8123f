//! Forwarding to a syslog receiver (rsyslog, syslog-ng, Vector, Fluent Bit): records become
//! RFC 5424 messages, framed by octet counting (RFC 6587) over TCP, or one datagram each over
//! UDP. Owns the message format and the connection; retries are the drain loop's.
//!
//! Delivery is at least once: a batch that fails half-way is sent again whole after
//! reconnecting, so the receiver may see some messages twice. UDP may lose messages under load,
//! as UDP does.

use ringlog_core::{Level, RecordMeta};
use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

/// Transport to the receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP with octet-counting framing.
    Tcp,
    /// One UDP datagram per message.
    Udp,
}

/// A syslog destination parsed from `syslog+tcp://HOST:PORT` or `syslog+udp://HOST:PORT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    /// TCP or UDP.
    pub transport: Transport,
    /// `HOST:PORT`.
    pub address: String,
}

impl Destination {
    /// Parses an `--out` value; `None` if it is not a syslog URL.
    pub fn parse(s: &str) -> Option<Destination> {
        let (transport, rest) = if let Some(r) = s.strip_prefix("syslog+tcp://") {
            (Transport::Tcp, r)
        } else if let Some(r) = s.strip_prefix("syslog+udp://") {
            (Transport::Udp, r)
        } else {
            return None;
        };
        Some(Destination {
            transport,
            address: rest.trim_end_matches('/').to_owned(),
        })
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
    tcp: Option<TcpStream>,
    udp: Option<UdpSocket>,
}

impl Sink {
    /// A sink for `destination` (connects lazily).
    pub fn new(destination: Destination) -> Sink {
        Sink {
            destination,
            tcp: None,
            udp: None,
        }
    }

    /// Checks the address resolves, so a typo fails at start-up.
    pub fn check(&self) -> io::Result<()> {
        self.address().map(|_| ())
    }

    /// The receiver's first resolved address.
    fn address(&self) -> io::Result<std::net::SocketAddr> {
        let mut addrs = self.destination.address.to_socket_addrs()?;
        addrs.next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "address resolves to nothing")
        })
    }

    /// Sends a batch of framed messages. On error the connection is dropped (and remade on
    /// the next call).
    pub fn send(&mut self, framed: &[u8]) -> io::Result<()> {
        let result = match self.destination.transport {
            Transport::Tcp => self.send_tcp(framed),
            Transport::Udp => self.send_udp(framed),
        };
        if result.is_err() {
            self.tcp = None;
            self.udp = None;
        }
        result
    }

    fn send_tcp(&mut self, framed: &[u8]) -> io::Result<()> {
        if self.tcp.is_none() {
            let addr = self.address()?;
            let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
            stream.set_write_timeout(Some(Duration::from_secs(30)))?;
            stream.set_nodelay(true)?;
            self.tcp = Some(stream);
        }
        self.tcp.as_mut().expect("connected").write_all(framed)
    }

    fn send_udp(&mut self, framed: &[u8]) -> io::Result<()> {
        if self.udp.is_none() {
            let addr = self.address()?;
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

/// Splits octet-counted frames (`LEN SP MSG`...) into their messages.
pub fn frames(mut framed: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let space = framed.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&framed[..space]).ok()?.parse().ok()?;
        let message = framed.get(space + 1..space + 1 + len)?;
        framed = &framed[space + 1 + len..];
        Some(message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse() {
        assert_eq!(
            Destination::parse("syslog+tcp://127.0.0.1:514"),
            Some(Destination {
                transport: Transport::Tcp,
                address: "127.0.0.1:514".into()
            })
        );
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
