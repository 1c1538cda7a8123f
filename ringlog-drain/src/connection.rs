//! A connection to a forwarding receiver: TCP, or TLS over TCP. Owns connecting with timeouts
//! and asking the kernel how much of what was written the peer has not acknowledged yet. It
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

/// An open connection.
#[derive(Debug)]
pub enum Connection {
    /// Clear text.
    Plain(TcpStream),
    /// Encrypted; the receiver's certificate was verified.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
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
                Ok(Connection::Plain(tcp))
            }
            Some(tls) => {
                tcp.set_read_timeout(Some(CONNECT_TIMEOUT))?;
                tcp.set_write_timeout(Some(CONNECT_TIMEOUT))?;
                let stream = tls.connect(tcp)?;
                stream.sock.set_read_timeout(Some(IO_TIMEOUT))?;
                stream.sock.set_write_timeout(Some(IO_TIMEOUT))?;
                Ok(Connection::Tls(Box::new(stream)))
            }
        }
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            Connection::Plain(s) => s,
            Connection::Tls(s) => &s.sock,
        }
    }

    /// Bytes written to the socket that the peer has not acknowledged at the TCP level yet
    /// (`SIOCOUTQ`); `None` if the kernel will not say.
    pub fn unacknowledged_bytes(&self) -> Option<u64> {
        let mut queued: libc::c_int = 0;
        // SAFETY: TIOCOUTQ (== SIOCOUTQ for TCP sockets) writes one int through the pointer,
        // which points at a live local; the descriptor is our open socket.
        let rc = unsafe { libc::ioctl(self.tcp().as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
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
            let _ = rustix::net::sockopt::set_tcp_quickack(self.tcp(), true);
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
