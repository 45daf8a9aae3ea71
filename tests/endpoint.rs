//! The token endpoint as a token source for any OAuth 2.0 server: the request each
//! configuration sends, a fresh signed assertion per `private_key_jwt` request, and a key the
//! host cannot use (refused before anything is sent, and held).

mod support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use autopay_auth::{
    BodyFormat, ClientAuth, ClientSecret, Config, Endpoint, Error, Parts, Policy, PrivateKey, Signer,
    TokenManager, TokenRequest, TokenResponse, TokenSource, Transport, field,
};
use base64ct::{Base64UrlUnpadded, Encoding};
use support::{FakeClock, FakeStore, START_MS, block_on, get};

const URL: &str = "https://as.example.com/oauth2/token";
const JWK: &str = r#"{"kty":"EC","crv":"P-256","x":"AA","y":"AA","d":"c2VjcmV0LWtleQ","kid":"k-1"}"#;

/// Answers every request with a fresh token and keeps what was sent.
#[derive(Clone, Default)]
struct Recorder {
    sent: Rc<RefCell<Vec<TokenRequest>>>,
    body: Rc<RefCell<String>>,
}

impl Transport for Recorder {
    async fn send(&self, request: TokenRequest, _timeout_ms: u64) -> Result<TokenResponse, Error> {
        self.sent.borrow_mut().push(request);
        let n = self.sent.borrow().len();
        let body = self.body.borrow().clone();
        Ok(TokenResponse {
            status: 200,
            retry_after: None,
            headers: Vec::new(),
            body: if body.is_empty() {
                format!(r#"{{"access_token":"tok-{n}","token_type":"bearer","expires_in":"3600"}}"#)
            } else {
                body
            },
        })
    }
}

/// "Signs" by reversing the input; counts its calls; can refuse the key.
#[derive(Clone, Default)]
struct FakeSigner {
    calls: Rc<Cell<u32>>,
    refuse: bool,
}

impl Signer for FakeSigner {
    async fn sign(&self, _key: &PrivateKey, input: &[u8]) -> Result<Vec<u8>, Error> {
        self.calls.set(self.calls.get() + 1);
        if self.refuse {
            return Err(Error::config(field::PRIVATE_KEY, "could not be imported"));
        }
        Ok(input.iter().rev().copied().collect())
    }
}

fn signed_config() -> Config {
    Config::builder(URL, "svc")
        .client_auth(ClientAuth::PrivateKeyJwt)
        .private_key(PrivateKey::parse(JWK, None, None).unwrap())
        .body(BodyFormat::Form)
        .audience(None)
        .scope("read")
        .build()
        .unwrap()
}

fn form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn claims(assertion: &str) -> serde_json::Value {
    let part = assertion.split('.').nth(1).unwrap();
    serde_json::from_slice(&Base64UrlUnpadded::decode_vec(part).unwrap()).unwrap()
}

#[test]
fn private_key_jwt_signs_a_fresh_assertion_for_every_request() {
    let clock = FakeClock::at(START_MS);
    let transport = Recorder::default();
    let signer = FakeSigner::default();
    let source = Endpoint::new(signed_config(), transport.clone(), clock.clone()).with_signer(signer.clone());
    let first = block_on(source.mint(None, 1_000)).unwrap();
    clock.advance(5_000);
    let second = block_on(source.mint(None, 1_000)).unwrap();
    assert_eq!(
        (first.access_token.as_str(), second.access_token.as_str()),
        ("tok-1", "tok-2")
    );
    assert_eq!(first.lifetime_ms(), 3_600_000, "a numeric-string expires_in");
    assert_eq!(signer.calls.get(), 2);
    let sent = transport.sent.borrow();
    let assertions: Vec<String> = sent
        .iter()
        .map(|r| {
            assert_eq!(
                (r.url.as_str(), r.content_type, r.header("authorization")),
                (URL, TokenRequest::FORM, None)
            );
            let fields = form(&r.body);
            let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(
                names,
                [
                    "client_id",
                    "client_assertion_type",
                    "client_assertion",
                    "grant_type",
                    "scope"
                ]
            );
            fields[2].1.clone()
        })
        .collect();
    let (a, b) = (claims(&assertions[0]), claims(&assertions[1]));
    assert_eq!(a["iss"], "svc");
    assert_eq!(a["sub"], "svc");
    assert_eq!(a["aud"], URL);
    assert_eq!(a["iat"], START_MS / 1000);
    assert_eq!(b["iat"], START_MS / 1000 + 5);
    assert_ne!(a["jti"], b["jti"], "a new jti each time");
    // the signature is the signer's, over header.claims
    let (input, sig) = assertions[0].rsplit_once('.').unwrap();
    let reversed: Vec<u8> = input.bytes().rev().collect();
    assert_eq!(Base64UrlUnpadded::decode_vec(sig).unwrap(), reversed);
}

#[test]
fn a_host_without_a_signer_sends_nothing() {
    let transport = Recorder::default();
    let source = Endpoint::new(signed_config(), transport.clone(), FakeClock::at(START_MS));
    let err = block_on(source.mint(None, 1_000)).unwrap_err();
    assert_eq!(
        (err.code(), err.field()),
        ("invalid_config", Some(field::PRIVATE_KEY))
    );
    assert!(transport.sent.borrow().is_empty());
}

#[test]
fn a_key_the_platform_refuses_is_held_not_retried() {
    let clock = FakeClock::at(START_MS);
    let transport = Recorder::default();
    let signer = FakeSigner {
        refuse: true,
        ..FakeSigner::default()
    };
    let config = signed_config();
    let source = Endpoint::new(config.clone(), transport.clone(), clock.clone()).with_signer(signer.clone());
    let host = Parts::new(source, None::<FakeStore>, clock.clone());
    let m = TokenManager::new(&config, Policy::default(), 0.0, host).unwrap();
    for _ in 0..5 {
        let err = get(&m).unwrap_err();
        assert_eq!(err.field(), Some(field::PRIVATE_KEY));
        clock.advance(1_000);
    }
    assert_eq!(
        signer.calls.get(),
        1,
        "held: the key is not tried again within the hold"
    );
    assert!(transport.sent.borrow().is_empty());
}

#[test]
fn basic_and_post_send_the_secret_where_they_say() {
    let clock = FakeClock::at(START_MS);
    for (auth, header, in_body) in [
        (ClientAuth::SecretBasic, true, false),
        (ClientAuth::SecretPost, false, true),
    ] {
        let transport = Recorder::default();
        let config = Config::builder(URL, "svc")
            .client_secret(ClientSecret::new("p+w:d"))
            .client_auth(auth)
            .body(BodyFormat::Form)
            .build()
            .unwrap();
        let source = Endpoint::new(config, transport.clone(), clock.clone());
        block_on(source.mint(None, 1_000)).unwrap();
        let sent = transport.sent.borrow();
        assert_eq!(sent[0].header("authorization").is_some(), header, "{auth:?}");
        assert_eq!(
            sent[0].body.contains("client_secret=p%2Bw%3Ad"),
            in_body,
            "{auth:?}"
        );
    }
}

#[test]
fn a_missing_expires_in_uses_the_assumed_lifetime_or_is_refused() {
    let clock = FakeClock::at(START_MS);
    let transport = Recorder::default();
    *transport.body.borrow_mut() = r#"{"access_token":"t","token_type":"Bearer"}"#.into();
    let strict = Config::builder(URL, "svc")
        .client_secret(ClientSecret::new("s"))
        .build()
        .unwrap();
    let err =
        block_on(Endpoint::new(strict, transport.clone(), clock.clone()).mint(None, 1_000)).unwrap_err();
    assert_eq!(err.code(), "invalid_response");
    let lenient = Config::builder(URL, "svc")
        .client_secret(ClientSecret::new("s"))
        .default_expires_in(900)
        .build()
        .unwrap();
    let rec = block_on(Endpoint::new(lenient, transport, clock).mint(None, 1_000)).unwrap();
    assert_eq!(rec.lifetime_ms(), 900_000);
}

/// A DPoP token endpoint that asks for its nonce: the first answer is `use_dpop_nonce` after
/// `first_ms`; it records each request's timeout and proof.
#[derive(Clone)]
struct NonceServer {
    clock: FakeClock,
    first_ms: u64,
    seen: Rc<RefCell<Vec<(u64, String)>>>,
}

impl Transport for NonceServer {
    async fn send(&self, request: TokenRequest, timeout_ms: u64) -> Result<TokenResponse, Error> {
        let proof = request.header("dpop").unwrap_or_default().to_owned();
        self.seen.borrow_mut().push((timeout_ms, proof));
        let first = self.seen.borrow().len() == 1;
        if first {
            self.clock.advance(self.first_ms);
            return Ok(TokenResponse {
                status: 400,
                retry_after: None,
                headers: vec![("dpop-nonce".into(), "server-nonce-1".into())],
                body: r#"{"error":"use_dpop_nonce"}"#.into(),
            });
        }
        Ok(TokenResponse {
            status: 200,
            retry_after: None,
            headers: Vec::new(),
            body: r#"{"access_token":"bound","token_type":"DPoP","expires_in":3600}"#.into(),
        })
    }
}

fn dpop_endpoint(first_ms: u64) -> (Endpoint<NonceServer, FakeClock, FakeSigner>, NonceServer) {
    let clock = FakeClock::at(START_MS);
    let server = NonceServer {
        clock: clock.clone(),
        first_ms,
        seen: Rc::default(),
    };
    let key = autopay_auth::dpop::check_key(JWK, None).unwrap();
    let config = Config::builder(URL, "cid")
        .body(BodyFormat::Form)
        .audience(None)
        .client_secret(ClientSecret::new("s"))
        .dpop_key(key.clone())
        .build()
        .unwrap();
    // the endpoint takes an `Arc` (the native host's seam); this test is single-threaded
    #[allow(clippy::arc_with_non_send_sync)]
    let prover = std::sync::Arc::new(autopay_auth::dpop::Prover::new(key, FakeSigner::default()));
    let endpoint = Endpoint::new(config, server.clone(), clock)
        .with_signer(FakeSigner::default())
        .with_prover(prover);
    (endpoint, server)
}

fn proof_nonce(proof: &str) -> Option<String> {
    let claims = proof.split('.').nth(1).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&Base64UrlUnpadded::decode_vec(claims).unwrap()).unwrap();
    json.get("nonce").and_then(|n| n.as_str()).map(str::to_owned)
}

/// The nonce retry is one more request with the server's nonce, and only what is left of the
/// same timeout: a flight never outlives what its lock was taken for.
#[test]
fn a_nonce_challenge_is_answered_once_within_the_same_timeout() {
    let (endpoint, server) = dpop_endpoint(4_000);
    let record = block_on(endpoint.mint(None, 10_000)).unwrap();
    assert_eq!(record.token_type, "DPoP");
    let seen = server.seen.borrow();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].0, 10_000);
    assert_eq!(seen[1].0, 6_000, "what is left of the timeout, not a new one");
    assert_eq!(proof_nonce(&seen[0].1), None);
    assert_eq!(proof_nonce(&seen[1].1).as_deref(), Some("server-nonce-1"));
}

/// A challenge that comes back after the timeout is spent is not retried here. It fails as a
/// failure that passes (`server_error`, the server's `use_dpop_nonce` kept): the flight's next
/// attempt carries the nonce just learned. It is never `invalid_request`, which would hold the
/// whole fleet for nothing wrong with the client.
#[test]
fn a_nonce_challenge_after_the_timeout_is_not_retried_and_holds_nobody() {
    let (endpoint, server) = dpop_endpoint(10_000);
    let err = block_on(endpoint.mint(None, 10_000)).unwrap_err();
    assert_eq!(err.code(), "server_error");
    assert_eq!(err.report().error.as_deref(), Some("use_dpop_nonce"));
    assert_eq!(server.seen.borrow().len(), 1);
}
