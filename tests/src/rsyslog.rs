//! A real rsyslogd on loopback for the forwarding tests: a RELP (`imrelp`) or TCP (`imtcp`)
//! listener, in clear or over TLS (rsyslog's OpenSSL driver), optionally demanding client
//! certificates, writing each message's text as one line of a file. It can be SIGKILLed,
//! stopped and restarted on the same port. Also test certificates (made with rcgen) and a
//! loopback proxy that can cut connections.
//!
//! Tests that need an rsyslog module that is not installed skip loudly: [`Listener::missing`].

use crate::{tool, wait_until};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Client certificates a TLS listener asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// None: any client may send.
    None,
    /// Every client must present a certificate signed by the test CA.
    Required,
}

/// What rsyslogd listens with.
#[derive(Clone, Debug)]
pub enum Listener {
    /// `imrelp`, clear text.
    Relp,
    /// `imrelp` with TLS.
    RelpTls(ServerIdentity, ClientAuth),
    /// `imtcp`, clear text.
    Tcp,
    /// `imtcp` with TLS (RFC 5425).
    TcpTls(ServerIdentity, ClientAuth),
}

/// The server side of a TLS listener: its certificate and key, and the CA it trusts for
/// client certificates.
#[derive(Clone, Debug)]
pub struct ServerIdentity {
    /// CA file (PEM) for client certificates.
    pub ca: PathBuf,
    /// Server certificate (PEM).
    pub cert: PathBuf,
    /// Server key (PEM).
    pub key: PathBuf,
}

fn module_dir() -> Option<PathBuf> {
    [
        "/usr/lib/x86_64-linux-gnu/rsyslog",
        "/usr/lib/aarch64-linux-gnu/rsyslog",
        "/usr/lib/rsyslog",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|d| d.join("imtcp.so").exists())
}

impl Listener {
    /// The Debian package this listener needs when it is not installed (`None`: all there).
    /// Tests print `SKIPPED` and return when it is missing.
    pub fn missing(&self) -> Option<&'static str> {
        let dir = module_dir()?;
        let need: &[(&str, &str)] = match self {
            Listener::Relp => &[("imrelp.so", "rsyslog-relp")],
            Listener::RelpTls(..) => &[("imrelp.so", "rsyslog-relp")],
            Listener::Tcp => &[],
            Listener::TcpTls(..) => &[("lmnsd_ossl.so", "rsyslog-openssl")],
        };
        need.iter()
            .find(|(module, _)| !dir.join(module).exists())
            .map(|&(_, package)| package)
    }
}

/// Prints a loud, counted skip line (`ringlog_testkit::skip`) and returns true if `listener`
/// cannot run here.
pub fn skip_without(listener: &Listener, test: &str) -> bool {
    if module_dir().is_none() {
        ringlog_testkit::skip::report_named(
            test,
            format_args!("rsyslog is not installed (apt-get install rsyslog; .ci/run installs it)"),
        );
        return true;
    }
    match listener.missing() {
        Some(package) => {
            ringlog_testkit::skip::report_named(
                test,
                format_args!("needs the Debian package {package} (.ci/run installs it)"),
            );
            true
        }
        None => false,
    }
}

/// A free loopback TCP port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running (or stopped) rsyslogd.
#[derive(Debug)]
pub struct Rsyslog {
    child: Option<Child>,
    conf: PathBuf,
    pid_file: PathBuf,
    /// The port it listens on.
    pub port: u16,
    /// The file each received message's text is appended to, one per line.
    pub received: PathBuf,
}

impl Rsyslog {
    /// Writes the configuration for `listener` on `port` in `dir` (nothing is started).
    pub fn configure(dir: &Path, listener: &Listener, port: u16) -> Rsyslog {
        let received = dir.join("received.log");
        let conf = dir.join("rsyslog.conf");
        let mut text = format!(
            "global(workDirectory=\"{dir}\" maxMessageSize=\"256k\")\n\
             main_queue(queue.type=\"Direct\")\n",
            dir = dir.display()
        );
        let ossl_global = |id: &ServerIdentity| {
            format!(
                "global(DefaultNetstreamDriver=\"ossl\" DefaultNetstreamDriverCAFile=\"{}\" \
                 DefaultNetstreamDriverCertFile=\"{}\" DefaultNetstreamDriverKeyFile=\"{}\")\n",
                id.ca.display(),
                id.cert.display(),
                id.key.display()
            )
        };
        match listener {
            Listener::Relp => {
                text += "module(load=\"imrelp\")\n";
                text += &format!(
                    "input(type=\"imrelp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"ringlog\")\n"
                );
            }
            Listener::RelpTls(id, auth) => {
                text += "module(load=\"imrelp\" tls.tlslib=\"openssl\")\n";
                let auth = match auth {
                    ClientAuth::None => String::new(),
                    ClientAuth::Required => " tls.authmode=\"certvalid\"".to_owned(),
                };
                text += &format!(
                    "input(type=\"imrelp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"ringlog\" \
                     tls=\"on\" tls.cacert=\"{}\" tls.mycert=\"{}\" tls.myprivkey=\"{}\"{auth})\n",
                    id.ca.display(),
                    id.cert.display(),
                    id.key.display()
                );
            }
            Listener::Tcp => {
                text += "module(load=\"imtcp\")\n";
                text += &format!(
                    "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"ringlog\")\n"
                );
            }
            Listener::TcpTls(id, auth) => {
                text += &ossl_global(id);
                let auth = match auth {
                    ClientAuth::None => "anon",
                    ClientAuth::Required => "x509/certvalid",
                };
                text += &format!(
                    "module(load=\"imtcp\" StreamDriver.Name=\"ossl\" StreamDriver.Mode=\"1\" \
                     StreamDriver.AuthMode=\"{auth}\")\n"
                );
                text += &format!(
                    "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"ringlog\")\n"
                );
            }
        }
        text += &format!(
            "template(name=\"text\" type=\"string\" string=\"%msg%\\n\")\n\
             ruleset(name=\"ringlog\" queue.type=\"Direct\") {{\n\
             action(type=\"omfile\" file=\"{}\" template=\"text\" flushOnTXEnd=\"on\" asyncWriting=\"off\")\n}}\n",
            received.display()
        );
        std::fs::write(&conf, text).unwrap();
        Rsyslog {
            child: None,
            conf,
            pid_file: dir.join("rsyslog.pid"),
            port,
            received,
        }
    }

    /// Configures and starts it on a free port.
    pub fn start(dir: &Path, listener: &Listener) -> Rsyslog {
        let mut r = Self::configure(dir, listener, free_port());
        r.restart();
        r
    }

    /// Starts it (again) and waits until it listens.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "rsyslogd is already running");
        let _ = std::fs::remove_file(&self.pid_file);
        let child = Command::new(tool("rsyslogd", "rsyslog"))
            .args(["-n", "-f"])
            .arg(&self.conf)
            .arg("-i")
            .arg(&self.pid_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rsyslogd");
        self.child = Some(child);
        let port = self.port;
        let up = wait_until(Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "rsyslogd did not listen on {port}");
    }

    /// SIGKILL: it dies with whatever it had not acknowledged.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM: a graceful stop.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    /// The lines received so far.
    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.received)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Certificates for the TLS tests, as PEM files in a directory: a CA, a server certificate
/// it signed for `localhost` and `127.0.0.1`, a client certificate it signed, a server
/// certificate it signed for another name, and a server certificate signed by an unrelated CA.
#[derive(Debug)]
pub struct Certs {
    /// The test CA.
    pub ca: PathBuf,
    /// Server certificate and key for localhost / 127.0.0.1, signed by the CA.
    pub server: (PathBuf, PathBuf),
    /// Server certificate and key for `elsewhere.example` only, signed by the CA.
    pub wrong_name: (PathBuf, PathBuf),
    /// Server certificate and key for localhost / 127.0.0.1, signed by another CA.
    pub untrusted: (PathBuf, PathBuf),
    /// Client certificate and key, signed by the CA.
    pub client: (PathBuf, PathBuf),
}

impl Certs {
    /// Makes them in `dir`.
    pub fn make(dir: &Path) -> Certs {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let ca_pair = |name: &str| {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name.push(DnType::CommonName, name);
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let cert = p.self_signed(&key).unwrap();
            (cert, Issuer::new(p, key))
        };
        let (ca_cert, ca) = ca_pair("ringlog test CA");
        let (_, other_ca) = ca_pair("some other CA");
        let write = |name: &str, pem: String| {
            let p = dir.join(name);
            std::fs::write(&p, pem).unwrap();
            p
        };
        let leaf = |name: &str,
                    sans: &[&str],
                    usage: ExtendedKeyUsagePurpose,
                    issuer: &Issuer<'_, KeyPair>| {
            let key = KeyPair::generate().unwrap();
            let mut p =
                CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                    .unwrap();
            p.distinguished_name.push(DnType::CommonName, sans[0]);
            p.extended_key_usages = vec![usage];
            let cert = p.signed_by(&key, issuer).unwrap();
            (
                write(&format!("{name}.pem"), cert.pem()),
                write(&format!("{name}.key"), key.serialize_pem()),
            )
        };
        let server = ExtendedKeyUsagePurpose::ServerAuth;
        Certs {
            ca: write("ca.pem", ca_cert.pem()),
            server: leaf("server", &["localhost", "127.0.0.1"], server.clone(), &ca),
            wrong_name: leaf("wrong-name", &["elsewhere.example"], server.clone(), &ca),
            untrusted: leaf("untrusted", &["localhost", "127.0.0.1"], server, &other_ca),
            client: leaf(
                "client",
                &["ringlog-drain.test"],
                ExtendedKeyUsagePurpose::ClientAuth,
                &ca,
            ),
        }
    }

    /// A server identity from one of the pairs above.
    pub fn identity(&self, pair: &(PathBuf, PathBuf)) -> ServerIdentity {
        ServerIdentity {
            ca: self.ca.clone(),
            cert: pair.0.clone(),
            key: pair.1.clone(),
        }
    }
}

/// A loopback TCP proxy in front of a receiver that can cut every connection through it, as a
/// network failure would.
#[derive(Debug)]
pub struct Proxy {
    /// The port clients connect to.
    pub port: u16,
    connections: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// Starts a proxy to `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (conns, stopping) = (connections.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let mut list = conns.lock().unwrap();
                list.push(client.try_clone().unwrap());
                list.push(server.try_clone().unwrap());
                drop(list);
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Proxy {
            port,
            connections,
            stop,
        }
    }

    /// Cuts every connection through the proxy (both directions, at once). Returns how many
    /// connections it cut.
    pub fn cut(&self) -> usize {
        let mut list = self.connections.lock().unwrap();
        for s in list.iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
        let n = list.len() / 2;
        list.clear();
        n
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.cut();
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
