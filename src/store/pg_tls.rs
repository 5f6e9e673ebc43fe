//! How connections to the team's PostgreSQL server are encrypted. The URL says it as libpq
//! reads it: `sslmode` is `disable` (plain), `prefer` (TLS when the server offers it, the
//! default), `require` (TLS or no connection; the certificate is not checked), `verify-ca`
//! (TLS with a certificate signed by `sslrootcert`) or `verify-full` (that, and issued for the
//! host in the URL). TLS is rustls (through `tokio-postgres-rustls`); the URL handed to the
//! `postgres` client keeps only the modes it knows, the checking is done here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use postgres::Client;
use postgres::config::SslMode;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error as TlsError, SignatureScheme};

/// The URL's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Disable => "disable",
            Mode::Prefer => "prefer",
            Mode::Require => "require",
            Mode::VerifyCa => "verify-ca",
            Mode::VerifyFull => "verify-full",
        }
    }
}

/// What a URL asks of the connection, and the URL left for the client.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsUrl {
    /// The URL without `sslmode` and `sslrootcert`.
    pub client_url: String,
    pub mode: Mode,
    pub root_cert: Option<PathBuf>,
}

/// Read `sslmode` and `sslrootcert` from a `postgres://` URL (or a `key=value` string).
pub fn parse(url: &str) -> Result<TlsUrl, String> {
    let mut mode = None;
    let mut root_cert = None;
    let mut take = |key: &str, value: &str| -> Result<bool, String> {
        match key {
            "sslmode" => {
                mode = Some(match value {
                    "disable" => Mode::Disable,
                    "allow" | "prefer" => Mode::Prefer,
                    "require" => Mode::Require,
                    "verify-ca" => Mode::VerifyCa,
                    "verify-full" => Mode::VerifyFull,
                    other => {
                        return Err(format!(
                            "sslmode={other} is not a mode (disable, prefer, require, verify-ca, verify-full)"
                        ));
                    }
                });
                Ok(true)
            }
            "sslrootcert" => {
                root_cert = Some(PathBuf::from(percent_decode(value)));
                Ok(true)
            }
            _ => Ok(false),
        }
    };
    let client_url = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            None => url.to_owned(),
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    if !take(k, v)? {
                        kept.push(pair);
                    }
                }
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        let mut kept = Vec::new();
        for pair in url.split_whitespace() {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if !take(k, v)? {
                kept.push(pair);
            }
        }
        kept.join(" ")
    };
    let mode = mode.unwrap_or(Mode::Prefer);
    if matches!(mode, Mode::VerifyCa | Mode::VerifyFull) && root_cert.is_none() {
        return Err(format!(
            "sslmode={} needs sslrootcert=FILE (the certificate of the authority that signed the server's)",
            mode.name()
        ));
    }
    Ok(TlsUrl {
        client_url,
        mode,
        root_cert,
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1..i + 3)) {
            (b'%', Some(h)) if h.iter().all(u8::is_ascii_hexdigit) => {
                let hex = std::str::from_utf8(h).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Connect as the URL says. The error is one line naming what to do.
pub fn connect(url: &str) -> Result<Client, String> {
    let t = parse(url)?;
    let mut config: postgres::Config = t
        .client_url
        .parse()
        .map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
    if t.mode == Mode::Disable {
        config.ssl_mode(SslMode::Disable);
        return config
            .connect(postgres::NoTls)
            .map_err(|e| super::postgres::pg_message(&e));
    }
    config.ssl_mode(if t.mode == Mode::Prefer {
        SslMode::Prefer
    } else {
        SslMode::Require
    });
    let tls = client_config(t.mode, t.root_cert.as_deref())?;
    config
        .connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
        .map_err(|e| {
            let msg = super::postgres::pg_message(&e);
            let lower = msg.to_ascii_lowercase();
            if lower.contains("server does not support tls") || lower.contains("ssl") && lower.contains("not supported") {
                format!(
                    "the server does not offer TLS, and sslmode={} requires it (ask the lead to turn TLS on, or connect with sslmode=prefer)",
                    t.mode.name()
                )
            } else if lower.contains("certificate") || lower.contains("unknownissuer") {
                format!(
                    "the server's certificate does not verify against {} ({msg}); ask the lead for the right certificate file",
                    t.root_cert
                        .as_deref()
                        .map_or("the trusted certificates".into(), |p| p.display().to_string())
                )
            } else {
                msg
            }
        })
}

/// Whether this connection is encrypted, and how (`TLSv1.3`): the server's own view.
pub fn encryption(client: &mut Client) -> Result<Option<String>, String> {
    let row = client
        .query_opt(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .map_err(|e| super::postgres::pg_message(&e))?;
    Ok(row.and_then(|r| {
        let on: bool = r.get(0);
        on.then(|| {
            r.get::<_, Option<String>>(1)
                .unwrap_or_else(|| "TLS".into())
        })
    }))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(mode: Mode, root_cert: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let chain = match (mode, root_cert) {
        (Mode::VerifyCa | Mode::VerifyFull, Some(path)) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read sslrootcert {}: {e}", path.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("cannot read sslrootcert {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "sslrootcert {} holds no certificate",
                    path.display()
                ));
            }
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
            }
            Some(
                rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider(),
                )
                .build()
                .map_err(|e| format!("TLS: {e}"))?,
            )
        }
        _ => None,
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Verifier {
            provider: provider(),
            chain,
            check_name: mode == Mode::VerifyFull,
        }))
        .with_no_client_auth())
}

/// The server's certificate as the mode asks: for `verify-ca` and `verify-full` its chain
/// must lead to the root (and for `verify-full` it must name the host); for `prefer` and
/// `require` it is taken as it is (libpq's behaviour for these modes). The handshake's
/// signatures are checked in every mode.
#[derive(Debug)]
struct Verifier {
    provider: Arc<rustls::crypto::CryptoProvider>,
    chain: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    check_name: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(TlsError::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_says_the_mode_and_keeps_the_rest() {
        let t = parse("postgres://ann@10.0.0.5:5432/team?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x").unwrap();
        assert_eq!(t.mode, Mode::VerifyFull);
        assert_eq!(t.root_cert, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(
            t.client_url,
            "postgres://ann@10.0.0.5:5432/team?application_name=x"
        );
        let t = parse("postgres://ann@h/db").unwrap();
        assert_eq!(
            (t.mode, t.client_url.as_str()),
            (Mode::Prefer, "postgres://ann@h/db")
        );
        let t = parse("host=h user=ann sslmode=require").unwrap();
        assert_eq!(
            (t.mode, t.client_url.as_str()),
            (Mode::Require, "host=h user=ann")
        );
        assert!(parse("postgres://h/db?sslmode=sometimes").is_err());
        let e = parse("postgres://h/db?sslmode=verify-full").unwrap_err();
        assert!(e.contains("sslrootcert"), "{e}");
    }
}
