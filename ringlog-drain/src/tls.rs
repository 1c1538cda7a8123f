//! TLS for forwarding (`syslog+tls://`, `relp+tls://`), with rustls and its `ring` provider.
//! Owns loading the CA, client certificate and key files, and the handshake: the receiver's
//! certificate must chain to `--tls-ca` and name the host (or `--tls-name`), else the
//! connection is refused before a single record is sent. It never falls back to clear text.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The files and name a TLS connection is checked against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// CA certificates (PEM) the receiver's certificate must chain to.
    pub ca: Option<PathBuf>,
    /// Client certificate chain (PEM), for receivers that demand one.
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key: Option<PathBuf>,
    /// The name the receiver's certificate must carry (default: the host of the URL).
    pub name: Option<String>,
}

/// Why TLS could not be set up.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// `--tls-ca` is required for a TLS destination.
    NoCa,
    /// `--tls-cert` and `--tls-key` go together.
    HalfClientIdentity,
    /// A file could not be read or holds no usable PEM item.
    File {
        /// Which file.
        path: PathBuf,
        /// What was expected in it.
        what: &'static str,
        /// The cause.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// rustls refused the configuration (e.g. a key that does not match the certificate).
    Config(rustls::Error),
    /// The name to check is not a valid DNS name or IP address.
    BadName(String),
}

impl fmt::Display for TlsSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsSetupError::NoCa => write!(
                f,
                "a TLS destination needs --tls-ca FILE: the CA certificates (PEM) that signed the \
                 receiver's certificate"
            ),
            TlsSetupError::HalfClientIdentity => write!(
                f,
                "--tls-cert and --tls-key go together: give both for a client certificate, or neither"
            ),
            TlsSetupError::File { path, what, .. } => {
                write!(f, "cannot use {} as {what}", path.display())
            }
            TlsSetupError::Config(_) => write!(f, "the TLS client configuration is invalid"),
            TlsSetupError::BadName(n) => write!(
                f,
                "{n:?} is not a host name or IP address a certificate can be checked against \
                 (use --tls-name)"
            ),
        }
    }
}

impl std::error::Error for TlsSetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsSetupError::File { source, .. } => Some(source.as_ref()),
            TlsSetupError::Config(e) => Some(e),
            _ => None,
        }
    }
}

/// A ready TLS client: configuration and the name to check.
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClient")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn file_error(
    path: &Path,
    what: &'static str,
) -> impl FnOnce(rustls::pki_types::pem::Error) -> TlsSetupError {
    let path = path.to_owned();
    move |e| TlsSetupError::File {
        path,
        what,
        source: Box::new(e),
    }
}

impl TlsClient {
    /// Loads the files of `options` for a receiver at `host` (checked unless `options.name`
    /// says otherwise).
    pub fn new(options: &TlsOptions, host: &str) -> Result<TlsClient, TlsSetupError> {
        let ca = options.ca.as_deref().ok_or(TlsSetupError::NoCa)?;
        let mut roots = RootCertStore::empty();
        let what = "a CA file (PEM certificates)";
        for cert in CertificateDer::pem_file_iter(ca).map_err(file_error(ca, what))? {
            let cert = cert.map_err(file_error(ca, what))?;
            roots.add(cert).map_err(|e| TlsSetupError::File {
                path: ca.to_owned(),
                what,
                source: Box::new(e),
            })?;
        }
        if roots.is_empty() {
            return Err(TlsSetupError::File {
                path: ca.to_owned(),
                what,
                source: "no certificate in it".into(),
            });
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsSetupError::Config)?
            .with_root_certificates(roots);
        let config = match (&options.cert, &options.key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let what = "a client certificate (PEM)";
                let chain = CertificateDer::pem_file_iter(cert)
                    .map_err(file_error(cert, what))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(file_error(cert, what))?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(file_error(key, "a private key (PEM)"))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(TlsSetupError::Config)?
            }
            _ => return Err(TlsSetupError::HalfClientIdentity),
        };
        let name = options.name.as_deref().unwrap_or(host);
        let name = ServerName::try_from(name.trim_start_matches('[').trim_end_matches(']'))
            .map_err(|_| TlsSetupError::BadName(name.to_owned()))?
            .to_owned();
        Ok(TlsClient {
            config: Arc::new(config),
            name,
        })
    }

    /// Runs the handshake over `tcp`: returns the encrypted stream once the receiver proved
    /// its identity. A certificate that does not verify is an error whose text says why
    /// (`invalid peer certificate: UnknownIssuer`, `NotValidForName`, ...).
    pub fn connect<S: io::Read + io::Write>(
        &self,
        mut tcp: S,
    ) -> io::Result<StreamOwned<ClientConnection, S>> {
        let mut conn = ClientConnection::new(self.config.clone(), self.name.clone())
            .map_err(io::Error::other)?;
        while conn.is_handshaking() {
            match conn.complete_io(&mut tcp) {
                Ok((0, 0)) if conn.is_handshaking() => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the receiver closed the connection during the TLS handshake",
                    ))
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no TLS handshake answer from the receiver (does its port speak TLS?)",
                    ))
                }
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("TLS handshake failed: {e}"),
                    ))
                }
            }
        }
        Ok(StreamOwned::new(conn, tcp))
    }
}
