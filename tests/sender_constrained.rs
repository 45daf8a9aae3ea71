//! Sender-constrained tokens with the native client, against a real server: oidc-provider with
//! DPoP (server nonces required) and mutual TLS (RFC 8705) behind a local TLS endpoint that asks
//! for client certificates, and a resource server that verifies each binding (tests/oidc/bound.mjs,
//! in a process of its own). Counts are the servers' own.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use autopay_auth::mtls::ClientCertificate;
use autopay_auth::native::Client;
use autopay_auth::{BodyFormat, ClientAuth, ClientSecret, Config, ConfigBuilder, PrivateKey, Source};
use serde_json::Value;
use support::Killed;

mod support;

const DPOP_SECRET: &str = "dpop-secret-value-DO-NOT-LEAK-31";

/// The provider and the resource server (tests/oidc/serve-bound.mjs).
struct Servers {
    _process: Killed,
    info: Value,
}

impl Servers {
    fn start() -> Self {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new("node")
            .arg(root.join("tests/oidc/serve-bound.mjs"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs oidc-provider");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let info: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        std::thread::spawn(move || lines.for_each(drop));
        Self {
            _process: Killed(child),
            info,
        }
    }

    fn s(&self, path: &str) -> String {
        self.info
            .pointer(path)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{path}"))
            .to_owned()
    }

    async fn stats(&self, base: &str) -> Value {
        let text = reqwest::get(format!("{base}/__stats"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn builder(&self, token_url: &str, id: &str) -> ConfigBuilder {
        Config::builder(token_url, id)
            .body(BodyFormat::Form)
            .audience(None)
    }

    fn dpop_key(&self, form: &str) -> PrivateKey {
        let text = match form {
            "jwk" => self.info["dpop"]["jwk"].to_string(),
            _ => self.s("/dpop/pem"),
        };
        PrivateKey::parse(&text, None, None).unwrap()
    }
}

/// The API call of a caller with its own request: `authorize` gives the headers, a nonce
/// challenge is answered once.
async fn call(client: &Client, http: &reqwest::Client, url: &str) -> (u16, Value) {
    for _ in 0..2 {
        let mut request = http.get(url);
        for (name, value) in client.authorize("GET", url).await.unwrap() {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let nonce = response
            .headers()
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null);
        if status == 401 && body["error"] == "use_dpop_nonce" && client.learn_nonce(url, nonce.as_deref()) {
            continue;
        }
        return (status, body);
    }
    panic!("a second nonce challenge")
}

/// DPoP natively: the provider's nonce learned on the first token request (two requests, one
/// token), the token bound to the key (`token_type` DPoP), the API's nonce learned and every
/// proof verified; a key given as a JWK and as PKCS#8 are the same key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dpop_bound_token_natively_with_the_servers_nonces() {
    let s = Servers::start();
    let provider = s.s("/issuer");
    let api = s.s("/api");
    for (round, form) in ["jwk", "pem"].into_iter().enumerate() {
        let config = s
            .builder(&s.s("/tokenUrl"), "dpop-client")
            .client_secret(ClientSecret::new(DPOP_SECRET))
            .dpop_key(s.dpop_key(form))
            .build()
            .unwrap();
        let client = Client::new(config).unwrap();
        let info = client.token_info().await.unwrap();
        assert_eq!(
            (info.token_type.as_str(), info.source),
            ("DPoP", Source::Network),
            "{form}"
        );
        let stats = s.stats(&provider).await;
        assert_eq!(stats["issued"], round as u64 + 1, "{form}: one token");
        assert_eq!(
            stats["nonceChallenges"],
            round as u64 + 1,
            "{form}: the nonce asked for once per client, then remembered"
        );
        let http = reqwest::Client::new();
        for i in 0..3 {
            let (status, body) = call(&client, &http, &format!("{api}/v1/native/{i}?q=1")).await;
            assert_eq!(status, 200, "{form}: {body}");
            assert_eq!(body["bound"], "dpop");
        }
        assert_eq!(client.token_info().await.unwrap().source, Source::Memory);
        assert!(client.dpop_thumbprint().await.is_some());
    }
    let rs = s.stats(&api).await;
    assert_eq!(rs["proofsVerified"], 6);
    assert_eq!(rs["nonceChallenges"], 2, "once per client");
}

/// Mutual TLS natively: `tls_client_auth` (a certificate the test CA signed) and
/// `self_signed_tls_client_auth` each get a token bound to their certificate, and the API accepts
/// it over the client's own HTTP client (which presents the certificate) and refuses it from a
/// connection that presents another certificate or none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_bound_tokens_natively_for_both_mutual_tls_methods() {
    let s = Servers::start();
    let ca = s.s("/ca");
    let tls_api = s.s("/tlsApi");
    let no_cert = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .build()
        .unwrap();
    for (id, auth, cert) in [
        ("mtls-client", ClientAuth::TlsClientAuth, "/client"),
        (
            "self-signed-client",
            ClientAuth::SelfSignedTlsClientAuth,
            "/selfSigned",
        ),
    ] {
        let certificate =
            ClientCertificate::parse(&s.s(&format!("{cert}/cert")), &s.s(&format!("{cert}/key"))).unwrap();
        let config = s
            .builder(&s.s("/tlsTokenUrl"), id)
            .client_auth(auth)
            .client_certificate(certificate)
            .build()
            .unwrap();
        let client = Client::builder(config).tls_root(&ca).build().unwrap();
        let info = client.token_info().await.unwrap();
        assert_eq!(info.token_type, "Bearer", "{id}");
        let url = format!("{tls_api}/v1/mtls");
        let (status, body) = call(&client, client.http(), &url).await;
        assert_eq!(
            (status, body["bound"].as_str()),
            (200, Some("mtls")),
            "{id}: {body}"
        );
        let (status, body) = call(&client, &no_cert, &url).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("certificate_mismatch")),
            "{id}: without the certificate the token is refused"
        );
    }
    let stats = s.stats(&s.s("/issuer")).await;
    assert_eq!(stats["issued"], 2, "one token each");
    // without a certificate, the mutual-TLS methods are refused before anything is sent
    let err = s
        .builder(&s.s("/tlsTokenUrl"), "mtls-client")
        .client_auth(ClientAuth::TlsClientAuth)
        .build()
        .unwrap_err();
    assert_eq!(
        (err.code(), err.field()),
        ("invalid_config", Some("client_certificate"))
    );
    // a certificate the server does not know: refused by the server
    let stranger = ClientCertificate::parse(&s.s("/selfSigned/cert"), &s.s("/selfSigned/key")).unwrap();
    let config = s
        .builder(&s.s("/tlsTokenUrl"), "mtls-client")
        .client_auth(ClientAuth::TlsClientAuth)
        .client_certificate(stranger)
        .build()
        .unwrap();
    let err = Client::builder(config)
        .tls_root(&ca)
        .build()
        .unwrap()
        .token()
        .await
        .unwrap_err();
    assert_eq!(err.code(), "access_denied", "{err}");
}
