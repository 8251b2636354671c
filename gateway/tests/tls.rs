//! With TLS configured the gateway speaks TLS 1.3 and nothing older.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::{SECRET, start_configured};
use mpc_gateway::{JwtKeys, TlsFiles};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

fn self_signed(dir: &Path) -> TlsFiles {
    let files = TlsFiles {
        cert_path: dir.join("cert.pem"),
        key_path: dir.join("key.pem"),
    };
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&files.key_path)
        .arg("-out")
        .arg(&files.cert_path)
        .output()
        .expect("openssl is installed");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    files
}

fn client(cert: &Path, version: &'static rustls::SupportedProtocolVersion) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(cert).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// `GET /health` over TLS; the response head, or the handshake error.
fn get_health(
    addr: std::net::SocketAddr,
    config: Arc<ClientConfig>,
) -> Result<(String, rustls::ProtocolVersion), std::io::Error> {
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(config, name).unwrap();
    let mut tls = StreamOwned::new(conn, TcpStream::connect(addr)?);
    tls.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    tls.read_to_string(&mut response)?;
    let version = tls.conn.protocol_version().unwrap();
    Ok((response, version))
}

#[actix_web::test]
async fn tls_gateway_speaks_tls13_only() {
    let dir = tempfile::tempdir().unwrap();
    let files = self_signed(dir.path());
    let cert = files.cert_path.clone();
    let gw = start_configured(JwtKeys::hs256(SECRET).unwrap(), |c| c.tls = Some(files)).await;
    let addr: std::net::SocketAddr = gw.base.trim_start_matches("http://").parse().unwrap();

    let modern = client(&cert, &rustls::version::TLS13);
    let old = client(&cert, &rustls::version::TLS12);
    let (ok, refused) = actix_web::rt::task::spawn_blocking(move || {
        (get_health(addr, modern), get_health(addr, old))
    })
    .await
    .unwrap();
    let (response, version) = ok.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(version, rustls::ProtocolVersion::TLSv1_3);
    let refusal = refused
        .expect_err("a TLS 1.2 client was served")
        .to_string();
    assert!(refusal.contains("ProtocolVersion"), "{refusal}");
}
