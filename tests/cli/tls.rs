//! `https://` management URLs work end to end through rustls: a throw-away CA
//! signs a certificate for `localhost`, a TLS listener in front of the
//! embedded broker's management API presents it, and `warren plan` trusts it
//! only when told to through `SSL_CERT_FILE`.

use std::net::SocketAddr;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::util::{embedded_broker, repo_path, run_with_env};

/// A TLS listener on loopback that forwards every connection to `backend`.
struct TlsFront {
    addr: SocketAddr,
    ca_pem: String,
    _runtime: tokio::runtime::Runtime,
}

fn tls_front(backend: SocketAddr) -> TlsFront {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("a CA key")).expect("a CA");
    let server_key = KeyPair::generate().expect("a server key");
    let server_cert = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("server parameters")
        .signed_by(&server_key, &ca)
        .expect("a server certificate");
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(server_cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .expect("a TLS server configuration");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("a loopback port");
    let addr = listener.local_addr().expect("a bound address");
    runtime.spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else { return };
                let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    TlsFront { addr, ca_pem: ca.pem(), _runtime: runtime }
}

#[test]
fn plan_reads_an_https_management_api_it_trusts_and_refuses_one_it_does_not() {
    let broker = embedded_broker();
    let backend: SocketAddr =
        broker.target.management_url.trim_start_matches("http://").parse().expect("the broker's HTTP address");
    let front = tls_front(backend);
    let dir = tempfile::tempdir().expect("a temp dir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &front.ca_pem).expect("the CA file is written");
    let amqps = broker.target.amqp_url.replacen("amqp://", "amqps://", 1);
    let management = format!("https://localhost:{}", front.addr.port());
    let topology = repo_path("topologies/registration.yaml");
    let args = ["plan", topology.to_str().expect("a UTF-8 path"), "--broker", &amqps, "--management", &management];

    let trusted = run_with_env(args, &[("SSL_CERT_FILE", ca_file.to_str().expect("a UTF-8 path"))]);
    assert_eq!(trusted.code, 2, "changes pending on a fresh broker:\n{}\n{}", trusted.stdout, trusted.stderr);
    assert!(trusted.stdout.contains("sms") && trusted.stdout.contains("email"), "{}", trusted.stdout);

    let empty = dir.path().join("no-roots.pem");
    std::fs::write(&empty, "").expect("an empty CA file is written");
    let untrusted = run_with_env(args, &[("SSL_CERT_FILE", empty.to_str().expect("a UTF-8 path"))]);
    assert_eq!(untrusted.code, 1, "{}\n{}", untrusted.stdout, untrusted.stderr);
    assert!(untrusted.stderr.to_lowercase().contains("certificate"), "says why: {}", untrusted.stderr);
}

#[test]
fn bench_runs_over_amqps_and_https_when_the_ca_is_trusted() {
    let broker = embedded_broker();
    let http: SocketAddr =
        broker.target.management_url.trim_start_matches("http://").parse().expect("the broker's HTTP address");
    let amqp: SocketAddr = url::Url::parse(&broker.target.amqp_url)
        .ok()
        .and_then(|u| u.socket_addrs(|| None).ok())
        .and_then(|addrs| addrs.first().copied())
        .expect("the broker's AMQP address");
    let http_front = tls_front(http);
    let amqp_front = tls_front(amqp);
    let dir = tempfile::tempdir().expect("a temp dir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, format!("{}{}", http_front.ca_pem, amqp_front.ca_pem)).expect("the CA file is written");
    let amqps = format!("amqps://guest:guest@localhost:{}/%2f", amqp_front.addr.port());
    let management = format!("https://localhost:{}", http_front.addr.port());
    let out = dir.path().join("result.json");
    let seed = repo_path("scenarios/seed.yaml");
    let output = run_with_env(
        [
            "bench",
            seed.to_str().expect("a UTF-8 path"),
            "--broker",
            &amqps,
            "--management",
            &management,
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--quiet",
            "--out",
            out.to_str().expect("a UTF-8 path"),
        ],
        &[("SSL_CERT_FILE", ca_file.to_str().expect("a UTF-8 path"))],
    );
    let result: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&out)
            .unwrap_or_else(|e| panic!("no result ({e}):\n{}\n{}", output.stdout, output.stderr)),
    )
    .expect("the result is JSON");
    assert_eq!(result["status"], "completed", "{}", output.stderr);
    let consumed = result["summary"]["consumed"].as_u64().expect("a consumed count");
    assert!(consumed > 0, "messages went over TLS: {result}");
    assert_eq!(result["summary"]["lost"], 0);
    assert!(!output.stderr.contains("guest:guest"), "no credentials in the output: {}", output.stderr);
}
