//! A connection to a forwarding receiver: TCP, or TLS over TCP. Owns connecting with timeouts,
//! asking the kernel how much of what was written the peer has not acknowledged yet, and
//! sleeping through answers that cannot complete what a reader waits for (`SO_RCVLOWAT`). It
//! never retries: its callers decide when to reconnect.

use crate::tls::TlsClient;
use rustls::{ClientConnection, StreamOwned};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// How long connecting (and a TLS handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a read or write may block: a receiver silent for this long is treated as gone
/// (its unacknowledged messages are sent again on a new connection).
const IO_TIMEOUT: Duration = Duration::from_secs(15);
/// How long answers that arrived may stay unread while more are awaited (see
/// [`Socket::read_awaited`]). Short beside the time a receiver needs for the half window the
/// drain waits for before refilling (64 messages at ~11 µs each in rsyslog's `imrelp` on the
/// 2-core VM of the README's figures: ~700 µs), so the receiver never runs out of messages;
/// long enough that each read takes a few dozen answers.
const ACK_DELAY: Duration = Duration::from_micros(250);

/// An open connection.
#[derive(Debug)]
pub enum Connection {
    /// Clear text.
    Plain(Socket),
    /// Encrypted; the receiver's certificate was verified.
    Tls(Box<StreamOwned<ClientConnection, Socket>>),
}

/// The TCP socket under a connection, and what its next read waits for.
#[derive(Debug)]
pub struct Socket {
    tcp: TcpStream,
    /// Bytes the reader waits for ([`Connection::await_bytes`]); at least 1.
    awaited: usize,
    /// The socket's `SO_RCVLOWAT` as last set (1, the kernel's default, until then).
    lowat: usize,
    /// Under TLS: the record framing of what was read (`None`: clear text).
    records: Option<Records>,
}

/// Where a TLS byte stream stands in its records: every record starts with a 5-byte header
/// that ends with the body's length. Followed so that a wait knows when rustls holds the start
/// of a record whose rest is still to come (it can decrypt nothing before that rest came).
#[derive(Debug, Default)]
struct Records {
    /// The current record's header bytes read so far (fewer than 5: incomplete).
    header: [u8; 5],
    header_read: usize,
    /// Bytes of the current record's body still to come.
    body_left: usize,
}

impl Records {
    fn follow(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(bytes.len());
                self.body_left -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (5 - self.header_read).min(bytes.len());
            self.header[self.header_read..self.header_read + n].copy_from_slice(&bytes[..n]);
            self.header_read += n;
            bytes = &bytes[n..];
            if self.header_read == 5 {
                self.body_left = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                self.header_read = 0;
            }
        }
    }

    /// Bytes still to come before the record read in part is complete (0: none is).
    fn incomplete(&self) -> usize {
        if self.header_read > 0 {
            5 - self.header_read
        } else {
            self.body_left
        }
    }
}

impl Socket {
    fn new(tcp: TcpStream, tls: bool) -> Socket {
        Socket {
            tcp,
            awaited: 1,
            lowat: 1,
            records: tls.then(Records::default),
        }
    }

    /// Sets `SO_RCVLOWAT` to `want` if it differs.
    fn set_lowat(&mut self, want: usize) -> io::Result<()> {
        if want == self.lowat {
            return Ok(());
        }
        let value = want.min(i32::MAX as usize) as libc::c_int;
        // SAFETY: SO_RCVLOWAT reads one int through the pointer, a live local of that size;
        // the descriptor is our open socket.
        let rc = unsafe {
            libc::setsockopt(
                self.tcp.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVLOWAT,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        self.lowat = want;
        Ok(())
    }

    /// Reads once `want` bytes are there (or EOF, or an error), or after [`ACK_DELAY`] what
    /// arrived by then; if nothing did, waits for the first byte.
    ///
    /// Why not simply sleep until `want` bytes are there: rsyslog's imrelp keeps Nagle's
    /// algorithm on, so after one answer segment it holds every further answer until our TCP
    /// ACK of that segment, and Linux sends the ACK when we read it (or after its 40 ms
    /// delayed-ACK timer: measured, 2,700 messages/s). Reading what arrived every
    /// `ACK_DELAY` sends that ACK, and the answers imrelp held meanwhile come in one segment.
    /// If nothing arrived, nothing waits for our ACK: sleeping until the first byte costs no
    /// one anything.
    fn read_awaited(&mut self, buf: &mut [u8], want: usize) -> io::Result<usize> {
        self.set_lowat(want)?;
        let fd = self.tcp.as_raw_fd();
        let mut pollfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let tick = libc::timespec {
            tv_sec: 0,
            tv_nsec: ACK_DELAY.as_nanos() as libc::c_long,
        };
        // SAFETY: one pollfd and a timespec, live locals; the kernel writes only `revents`;
        // the descriptor is our open socket; a null signal mask leaves the mask alone.
        // Readable (`want` bytes, EOF, a reset), the tick, or a signal: all end in the read.
        unsafe { libc::ppoll(&mut pollfd, 1, &tick, std::ptr::null()) };
        // SAFETY: `buf` is valid for writes of its length; the descriptor is our socket.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::WouldBlock {
            return Err(e);
        }
        self.set_lowat(1)?;
        self.tcp.read(buf)
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Under TLS rustls reads only when it holds no plaintext. Then what must come is the
        // rest of a record it holds in part (which may carry all that is awaited), else the
        // awaited bytes themselves (a record is never shorter than its plaintext).
        let want = match &self.records {
            Some(r) if r.incomplete() > 0 => r.incomplete(),
            _ => self.awaited,
        };
        let n = if want > 1 {
            self.read_awaited(buf, want)?
        } else {
            self.set_lowat(1)?;
            self.tcp.read(buf)?
        };
        if let Some(records) = &mut self.records {
            records.follow(&buf[..n]);
        }
        Ok(n)
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

/// The first address `address` (`HOST:PORT`) resolves to.
pub fn resolve(address: &str) -> io::Result<SocketAddr> {
    address
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "address resolves to nothing"))
}

impl Connection {
    /// Connects to `address`, with TLS if `tls` is given (the handshake completes here, so a
    /// receiver that fails verification never sees a record).
    pub fn open(address: &str, tls: Option<&TlsClient>) -> io::Result<Connection> {
        let tcp = TcpStream::connect_timeout(&resolve(address)?, CONNECT_TIMEOUT)?;
        tcp.set_nodelay(true)?;
        match tls {
            None => {
                tcp.set_read_timeout(Some(IO_TIMEOUT))?;
                tcp.set_write_timeout(Some(IO_TIMEOUT))?;
                Ok(Connection::Plain(Socket::new(tcp, false)))
            }
            Some(tls) => {
                tcp.set_read_timeout(Some(CONNECT_TIMEOUT))?;
                tcp.set_write_timeout(Some(CONNECT_TIMEOUT))?;
                let stream = tls.connect(Socket::new(tcp, true))?;
                stream.sock.tcp.set_read_timeout(Some(IO_TIMEOUT))?;
                stream.sock.tcp.set_write_timeout(Some(IO_TIMEOUT))?;
                Ok(Connection::Tls(Box::new(stream)))
            }
        }
    }

    fn socket(&self) -> &Socket {
        match self {
            Connection::Plain(s) => s,
            Connection::Tls(s) => &s.sock,
        }
    }

    /// The reader cannot go on before at least `bytes` more bytes (of the plaintext) arrived:
    /// the next reads sleep until that many are there (`SO_RCVLOWAT`) instead of waking for
    /// every segment. Never ask for more than must come: a read would wait for its timeout.
    pub fn await_bytes(&mut self, bytes: usize) {
        let socket = match self {
            Connection::Plain(s) => s,
            Connection::Tls(s) => &mut s.sock,
        };
        socket.awaited = bytes.max(1);
    }

    /// Bytes written to the socket that the peer has not acknowledged at the TCP level yet
    /// (`SIOCOUTQ`); `None` if the kernel will not say.
    pub fn unacknowledged_bytes(&self) -> Option<u64> {
        let mut queued: libc::c_int = 0;
        // SAFETY: TIOCOUTQ (== SIOCOUTQ for TCP sockets) writes one int through the pointer,
        // which points at a live local; the descriptor is our open socket.
        let rc = unsafe { libc::ioctl(self.socket().tcp.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
        (rc == 0 && queued >= 0).then_some(queued as u64)
    }
}

impl Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self {
            Connection::Plain(s) => s.read(buf),
            Connection::Tls(s) => s.read(buf),
        }?;
        // Acknowledge what was read at once. A RELP receiver answers each message with a small
        // `rsp` write, and rsyslog's sockets keep Nagle's algorithm on: its second answer waits
        // for our TCP ACK of the first. Linux delays that ACK by up to 40 ms when the socket
        // looks interactive and we have nothing to send (we are waiting for more answers
        // before refilling the window), which stalled every window by 40 ms. The option is not
        // sticky, so it is set after each read; a failure only costs speed.
        if n > 0 {
            let _ = rustix::net::sockopt::set_tcp_quickack(&self.socket().tcp, true);
        }
        Ok(n)
    }
}

impl Write for Connection {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Connection::Plain(s) => s.write(buf),
            Connection::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Connection::Plain(s) => s.flush(),
            Connection::Tls(s) => s.flush(),
        }
    }
}

impl crate::relp::ByteStream for Connection {
    fn await_bytes(&mut self, bytes: usize) {
        Connection::await_bytes(self, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_records_are_followed_across_any_cut() {
        // Records with bodies of 0, 3 and 300 bytes (an empty one, one shorter than a header).
        let mut stream = Vec::new();
        let mut spans = Vec::new();
        for len in [0u16, 3, 300] {
            let start = stream.len();
            stream.extend_from_slice(&[23, 3, 3]);
            stream.extend_from_slice(&len.to_be_bytes());
            stream.resize(stream.len() + usize::from(len), 0xaa);
            spans.push((start, stream.len()));
        }
        let left_at = |pos: usize| match spans.iter().find(|&&(a, b)| a < pos && pos < b) {
            None => 0,
            Some(&(a, _)) if pos - a < 5 => 5 - (pos - a),
            Some(&(_, b)) => b - pos,
        };
        for chunk in 1..8 {
            let mut records = Records::default();
            let mut pos = 0;
            while pos < stream.len() {
                let end = (pos + chunk).min(stream.len());
                records.follow(&stream[pos..end]);
                pos = end;
                assert_eq!(
                    records.incomplete(),
                    left_at(pos),
                    "at {pos}, chunks of {chunk}"
                );
            }
        }
    }
}
