//! The native client (feature `native`) against real parts: the Autopay emulator (a real HTTP
//! server on 127.0.0.1, tests/emulator/server.mjs) and a real redis-server, on a multi-threaded
//! tokio runtime. The burst, the fault table, a fleet of clients on one Redis, and the example.
//! Needs `node` and `redis-server` on PATH (scripts/setup-test.sh installs them).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use autopay_auth::native::{Client, ClientSet, NativeStore, PostgresStore, RedisStore};
use autopay_auth::{
    ClientAuth, ClientSecret, Config, DEFAULT_AUDIENCE, Policy, PrivateKey, Refusal, Source, code, field,
};
use serde_json::{Value, json};
use support::Killed;
use tokio::sync::Barrier;

mod support;

const ID: &str = "native-client";
const SECRET: &str = "native-secret";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The emulator in a process of its own, and its origin.
struct Emulator {
    _process: Killed,
    origin: String,
    http: reqwest::Client,
}

impl Emulator {
    fn start() -> Self {
        let mut child = Command::new("node")
            .arg(root().join("tests/emulator/server.mjs"))
            .args(["--port", "0", "--client-id", ID, "--client-secret", SECRET])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs the emulator");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let origin = loop {
            let line = lines.next().expect("the emulator says where it is").unwrap();
            if let Some(rest) = line.strip_prefix("Autopay emulator on ") {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        // keep reading its log, so it never blocks on a full pipe
        std::thread::spawn(move || lines.for_each(drop));
        Self {
            _process: Killed(child),
            origin,
            http: reqwest::Client::new(),
        }
    }

    fn token_url(&self) -> String {
        format!("{}/oauth/token", self.origin)
    }

    fn config(&self) -> Config {
        Config::new(&self.token_url(), ID, ClientSecret::new(SECRET), DEFAULT_AUDIENCE).unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let url = format!("{}/__emulator/{path}", self.origin);
        let text = self
            .http
            .post(url)
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    async fn token_requests(&self) -> u64 {
        let url = format!("{}/__emulator/stats", self.origin);
        let text = self.http.get(url).send().await.unwrap().text().await.unwrap();
        let stats: Value = serde_json::from_str(&text).unwrap();
        stats["tokenRequests"].as_u64().unwrap()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A redis-server of its own, on 127.0.0.1.
struct Redis {
    _process: Killed,
    url: String,
}

impl Redis {
    fn start() -> Self {
        let port = free_port();
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs");
        wait_for_port(port);
        Self {
            _process: Killed(child),
            url: format!("redis://127.0.0.1:{port}"),
        }
    }
}

/// A redis-server speaking TLS only, with a certificate for 127.0.0.1 signed by a CA of its own,
/// both made by openssl (rustls, rightly, takes no CA certificate as a server's own).
struct RedisTls {
    _process: Killed,
    _dir: TempDir,
    url: String,
    ca: Vec<u8>,
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl RedisTls {
    fn start() -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("autopay-auth-redis-tls-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key, ca) = (dir.join("cert.pem"), dir.join("key.pem"), dir.join("ca.pem"));
        let at = |name: &str| dir.join(name).to_string_lossy().into_owned();
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        for args in [
            vec![
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=test-ca",
            ]
            .into_iter()
            .map(str::to_owned)
            .chain(["-keyout".into(), at("ca.key"), "-out".into(), at("ca.pem")])
            .collect::<Vec<_>>(),
            ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1"]
                .into_iter()
                .map(str::to_owned)
                .chain(["-keyout".into(), at("key.pem"), "-out".into(), at("server.csr")])
                .collect(),
            ["x509", "-req", "-days", "1", "-CAcreateserial"]
                .into_iter()
                .map(str::to_owned)
                .chain(["-in".into(), at("server.csr"), "-CA".into(), at("ca.pem")])
                .chain(["-CAkey".into(), at("ca.key"), "-extfile".into(), at("ext.cnf")])
                .chain(["-out".into(), at("cert.pem")])
                .collect(),
        ] {
            let made = Command::new("openssl")
                .args(&args)
                .stderr(Stdio::null())
                .status()
                .expect("openssl runs");
            assert!(made.success(), "openssl {args:?}");
        }
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
            ])
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .arg("--tls-ca-cert-file")
            .arg(&ca)
            .args(["--tls-auth-clients", "no", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs");
        wait_for_port(port);
        Self {
            _process: Killed(child),
            ca: std::fs::read(&ca).unwrap(),
            _dir: TempDir(dir),
            url: format!("rediss://127.0.0.1:{port}"),
        }
    }
}

/// Waits (up to 5 s) until something listens on 127.0.0.1:`port`.
fn wait_for_port(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn quick() -> Policy {
    Policy {
        request_timeout_ms: 1_000,
        ..Policy::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_tasks_on_a_cold_cache_mint_once() {
    let emu = Emulator::start();
    for round in 0..3 {
        emu.post("reset", json!({})).await;
        // the token request is slow, so every task arrives while it is out
        emu.post("faults", json!([{ "delayMs": 200 }])).await;
        let client = Client::new(emu.config()).unwrap();
        let start = Arc::new(Barrier::new(1_000));
        let tasks: Vec<_> = (0..1_000)
            .map(|_| {
                let (client, start) = (client.clone(), Arc::clone(&start));
                tokio::spawn(async move {
                    start.wait().await;
                    client.token().await
                })
            })
            .collect();
        let mut tokens = BTreeSet::new();
        for t in tasks {
            tokens.insert(t.await.unwrap().unwrap());
        }
        let stats = client.stats();
        assert_eq!(emu.token_requests().await, 1, "round {round}");
        assert_eq!((tokens.len(), stats.mints), (1, 1), "round {round}");
        assert_eq!(
            stats.coalesced + stats.memory_hits,
            999,
            "round {round}: {stats:?}"
        );
    }
}

/// A metered vendor, natively: the emulator declares 2 tokens an hour the Okta way and grants
/// 2-second tokens; the native client reads the headers from reqwest's answer, asks twice, then
/// tells its callers when to come back — and `quotas()` says what is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_native_client_keeps_a_quota_the_vendor_declares() {
    let emu = Emulator::start();
    emu.post(
        "config",
        json!({ "expiresIn": 2, "quota": { "kind": "okta", "limit": 2, "windowSec": 3600 } }),
    )
    .await;
    let client = Client::new(emu.config()).unwrap();
    let (mut served, mut refused) = (0, 0);
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < until {
        match client.token().await {
            Ok(_) => served += 1,
            Err(e) => {
                assert_eq!(e.code(), code::MINT_BUDGET_EXHAUSTED, "{e}");
                assert!(e.retry_after().unwrap() > 3_500, "{e}");
                refused += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(emu.token_requests().await, 2);
    assert!(served > 0 && refused > 0, "{served} served, {refused} refused");
    let quotas = client.quotas();
    assert_eq!(quotas.len(), 1);
    let (name, limit, left, _) = &quotas[0];
    assert_eq!((name.as_str(), *limit, *left), ("okta", Some(2), 0));
}

/// The machine's fault table, through the native driver and a real HTTP exchange: what the
/// token endpoint answers, what the caller gets, and how many requests were made for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_reaches_the_caller_typed_and_is_asked_no_more_than_it_should() {
    let emu = Emulator::start();
    let error = |e: &str, d: &str| json!({ "error": e, "error_description": d });
    // (faults queued, the code the caller gets or None for a token, token requests made by
    // three calls in a row)
    let table: Vec<(Value, Option<&str>, u64)> = vec![
        // a 5xx that passes: retried within the one call, then served; the next calls hit memory
        (
            json!([{ "status": 503, "body": error("server_error", "busy") }]),
            None,
            2,
        ),
        // rate limited: typed with Retry-After, and no request until it ends
        (
            json!([{ "status": 429, "body": error("too_many_requests", "slow down"), "headers": { "retry-after": "30" } }]),
            Some(code::RATE_LIMITED),
            1,
        ),
        // the credentials refused: the vendor's error and description, then a hold
        (
            json!([{ "status": 401, "body": error("invalid_client", "Client authentication failed") }]),
            Some(code::ACCESS_DENIED),
            1,
        ),
        // a body that is no token: invalid_response, held
        (
            json!([{ "status": 200, "raw": "not json" }]),
            Some(code::INVALID_RESPONSE),
            1,
        ),
        // slower than the timeout, three times: each attempt times out, then the backoff holds
        (
            json!([{ "delayMs": 1_500 }, { "delayMs": 1_500 }, { "delayMs": 1_500 }]),
            Some(code::TIMEOUT),
            3,
        ),
    ];
    for (faults, expected, requests) in table {
        emu.post("reset", json!({})).await;
        emu.post("faults", faults.clone()).await;
        let client = Client::builder(emu.config()).policy(quick()).build().unwrap();
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(client.token().await);
        }
        let first = got[0].as_ref().err().map(|e| e.code());
        assert_eq!(first, expected, "{faults}");
        assert_eq!(emu.token_requests().await, requests, "{faults}");
        if let Some(Err(e)) = got.first() {
            let report = e.report();
            let secret_free =
                !format!("{e} {e:?} {}", serde_json::to_string(&report).unwrap()).contains(SECRET);
            assert!(secret_free, "the secret never appears in an error");
            if e.code() == code::ACCESS_DENIED {
                assert_eq!(report.error.as_deref(), Some("invalid_client"));
                assert_eq!(
                    report.description.as_deref(),
                    Some("Client authentication failed")
                );
                assert_eq!(report.status, Some(401));
            }
            if e.code() == code::RATE_LIMITED {
                assert!(e.retry_after().is_some_and(|s| s > 25), "{e:?}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_sharing_one_redis_mint_once_and_a_refused_token_is_dropped_for_all() {
    let emu = Emulator::start();
    let redis = Redis::start();
    emu.post("faults", json!([{ "delayMs": 200 }])).await;
    // eight clients: no memory shared, one Redis (as eight processes would be)
    let clients: Vec<Client> = (0..8)
        .map(|i| {
            let store = RedisStore::open(&redis.url).unwrap();
            Client::builder(emu.config())
                .store(store)
                .jitter(i as f64 / 8.0)
                .build()
                .unwrap()
        })
        .collect();
    let tasks: Vec<_> = clients
        .iter()
        .flat_map(|c| (0..25).map(move |_| c.clone()))
        .map(|c| tokio::spawn(async move { c.token_info().await.unwrap() }))
        .collect();
    let mut infos = Vec::new();
    for t in tasks {
        infos.push(t.await.unwrap());
    }
    let tokens: BTreeSet<_> = infos.iter().map(|i| i.access_token.clone()).collect();
    assert_eq!((tokens.len(), emu.token_requests().await), (1, 1));
    assert!(
        infos.iter().any(|i| i.source == Source::Store),
        "the others read it from Redis"
    );
    let mints: u64 = clients.iter().map(|c| c.stats().mints).sum();
    assert_eq!(mints, 1);

    // the API refuses it: one client drops it, from Redis too; a new client mints afresh
    let token = tokens.into_iter().next().unwrap();
    assert_eq!(clients[0].refused(&token).await, Refusal::Dropped);
    let fresh = Client::builder(emu.config())
        .store(RedisStore::open(&redis.url).unwrap())
        .build()
        .unwrap();
    let next = fresh.token_info().await.unwrap();
    assert_ne!(next.access_token, token);
    assert_eq!((next.source, emu.token_requests().await), (Source::Network, 2));
}

/// Managed Redis speaks TLS: a fleet on `rediss://` mints once; a server whose certificate the
/// client cannot verify is never trusted (every call fails, survived as an outage).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_on_redis_over_tls_mint_once_and_an_unverified_server_is_never_used() {
    let emu = Emulator::start();
    let redis = RedisTls::start();
    emu.post("faults", json!([{ "delayMs": 200 }])).await;
    let (clients, infos) = six_clients_at_once(&emu, || {
        RedisStore::open_with_ca(&redis.url, &redis.ca).unwrap().into()
    })
    .await;
    let sources: BTreeSet<String> = infos.iter().map(|i| format!("{:?}", i.source)).collect();
    let tokens: BTreeSet<String> = infos.into_iter().map(|i| i.access_token).collect();
    assert_eq!((tokens.len(), emu.token_requests().await), (1, 1));
    assert!(sources.contains("Store"), "read over TLS: {sources:?}");
    assert_eq!(clients.iter().map(|c| c.stats().kv_errors).sum::<u64>(), 0);

    // the public roots do not vouch for this server: no call goes through
    let untrusted = Client::builder(emu.config())
        .store(RedisStore::open(&redis.url).unwrap())
        .build()
        .unwrap();
    let info = untrusted.token_info().await.unwrap();
    assert_eq!(info.source, Source::Network, "it did not read the record");
    assert!(untrusted.stats().kv_errors >= 1);
    for bad in [
        RedisStore::open_with_ca("redis://127.0.0.1:1", &redis.ca).unwrap_err(),
        RedisStore::open_with_ca(&redis.url, b"not pem").unwrap_err(),
    ] {
        assert_eq!(bad.code(), code::INVALID_CONFIG);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_is_down_is_an_outage_survived_not_a_failure() {
    let emu = Emulator::start();
    // nothing listens there
    let store = RedisStore::open(&format!("redis://127.0.0.1:{}", free_port())).unwrap();
    let client = Client::builder(emu.config()).store(store).build().unwrap();
    let first = client.token_info().await.unwrap();
    assert_eq!(first.source, Source::Network);
    assert_eq!(client.token_info().await.unwrap().source, Source::Memory);
    let stats = client.stats();
    assert_eq!(stats.mints, 1);
    assert!(stats.kv_errors >= 1, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidate_mints_anew() {
    let emu = Emulator::start();
    let client = Client::new(emu.config()).unwrap();
    let a = client.token().await.unwrap();
    assert_eq!(client.token().await.unwrap(), a);
    client.invalidate().await;
    let b = client.token().await.unwrap();
    assert_ne!(a, b);
    assert_eq!(emu.token_requests().await, 2);
}

/// `examples/native.rs`, built by `cargo test --features native`, run as a user would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_gets_one_token_for_its_hundred_tasks() {
    let emu = Emulator::start();
    let exe = std::env::current_exe().unwrap();
    let example = exe.parent().unwrap().parent().unwrap().join("examples/native");
    assert!(
        example.exists(),
        "build it first (cargo build --features native --examples): {}",
        example.display()
    );
    let out = Command::new(example)
        .env("AUTOPAY_CLIENT_ID", ID)
        .env("AUTOPAY_CLIENT_SECRET", SECRET)
        .env("AUTOPAY_TOKEN_URL", emu.token_url())
        .env_remove("AUTOPAY_REDIS_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("100 tasks: 1 distinct token(s), 1 mint(s)"),
        "{stdout}"
    );
    assert!(!stdout.contains(SECRET));
    assert_eq!(emu.token_requests().await, 1);
}

/// oidc-provider (a certified OpenID provider) in a process of its own, with one
/// `private_key_jwt` client per key type (tests/oidc/serve.mjs).
struct Provider {
    _process: Killed,
    token_url: String,
    origin: String,
    clients: Value,
}

impl Provider {
    fn start() -> Self {
        let mut child = Command::new("node")
            .arg(root().join("tests/oidc/serve.mjs"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs oidc-provider");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        std::thread::spawn(move || lines.for_each(drop));
        Self {
            _process: Killed(child),
            token_url: first["tokenUrl"].as_str().unwrap().to_owned(),
            origin: first["origin"].as_str().unwrap().to_owned(),
            clients: first["clients"].clone(),
        }
    }

    async fn token_requests(&self) -> u64 {
        let text = reqwest::get(format!("{}/__stats", self.origin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let stats: Value = serde_json::from_str(&text).unwrap();
        stats["requests"].as_u64().unwrap()
    }

    fn config(&self, id: &str, key: PrivateKey) -> Config {
        Config::builder(&self.token_url, id)
            .client_auth(ClientAuth::PrivateKeyJwt)
            .body(autopay_auth::BodyFormat::Form)
            .audience(None)
            .private_key(key)
            .build()
            .unwrap()
    }
}

/// The native signer (RustCrypto) against oidc-provider, which verifies every assertion with the
/// client's registered public key: RS256 and PS256 keys as PKCS#8 PEM, ES256, ES384 and Ed25519
/// keys as JWKs and as PEM — each gets a token, once, then serves it from memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_key_jwt_signed_natively_is_accepted_by_oidc_provider() {
    let p = Provider::start();
    let mut asked = 0;
    for (id, form) in [
        ("jwt-rs256", "pem"),
        ("jwt-ps256", "pem"),
        ("jwt-es256", "jwk"),
        ("jwt-es256", "pem"),
        ("jwt-es384", "jwk"),
        ("jwt-eddsa", "jwk"),
        ("jwt-eddsa", "pem"),
    ] {
        let c = &p.clients[id];
        let text = match form {
            "jwk" => c["jwk"].to_string(),
            _ => c["pem"].as_str().unwrap().to_owned(),
        };
        let key = PrivateKey::parse(&text, c["alg"].as_str(), None).unwrap();
        let client = Client::new(p.config(id, key)).unwrap();
        let first = client
            .token_info()
            .await
            .unwrap_or_else(|e| panic!("{id} ({form}): {e}"));
        assert_eq!(first.source, Source::Network, "{id}");
        assert_eq!(client.token_info().await.unwrap().source, Source::Memory);
        asked += 1;
        assert_eq!(
            p.token_requests().await,
            asked,
            "{id} ({form}): one token request"
        );
    }
    // the ES256 key for the RSA client: oidc-provider refuses the assertion
    let wrong = PrivateKey::parse(&p.clients["jwt-es256"]["jwk"].to_string(), None, None).unwrap();
    let err = Client::new(p.config("jwt-rs256", wrong))
        .unwrap()
        .token()
        .await
        .unwrap_err();
    assert_eq!((err.code(), err.status()), ("access_denied", Some(401)), "{err}");
}

/// Many credential sets in one process: a `ClientSet` over one Redis, three configurations of
/// oidc-provider that differ in one field (the scope; the client and its key), 300 concurrent
/// tasks spread over them, each looking its client up anew: one token request per configuration,
/// and every task's token is a JWT the provider issued for that task's client and scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_set_keeps_each_configuration_to_its_own_tokens() {
    use base64ct::{Base64UrlUnpadded, Encoding};
    let p = Provider::start();
    let redis = Redis::start();
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let set = ClientSet::builder()
        .store(RedisStore::open(&redis.url).unwrap())
        .observer(move |e| seen.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    let key = |id: &str| PrivateKey::parse(&p.clients[id]["jwk"].to_string(), None, None).unwrap();
    let config = |label: &str, id: &str, scope: &str| {
        Config::builder(&p.token_url, id)
            .client_auth(ClientAuth::PrivateKeyJwt)
            .body(autopay_auth::BodyFormat::Form)
            .audience(None)
            .scope(scope)
            .resource("https://api.example.test")
            .label(label)
            .private_key(key(id))
            .build()
            .unwrap()
    };
    let configs = [
        ("reader", "jwt-es256", "read"),
        ("writer", "jwt-es256", "write"),
        ("other", "jwt-eddsa", "read"),
    ];
    for (label, id, scope) in configs {
        set.define(label, config(label, id, scope)).unwrap();
    }
    assert_eq!(
        set.define("reader", config("reader", "jwt-es256", "read"))
            .unwrap_err()
            .code(),
        code::INVALID_CONFIG
    );
    let start = Arc::new(Barrier::new(300));
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let (set, start) = (set.clone(), Arc::clone(&start));
            let (label, id, scope) = configs[i % 3];
            tokio::spawn(async move {
                start.wait().await;
                let token = set.named(label).unwrap().token().await.unwrap();
                (id, scope, token)
            })
        })
        .collect();
    let mut checked = 0;
    for t in tasks {
        let (id, scope, token) = t.await.unwrap();
        let claims = token.split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(&Base64UrlUnpadded::decode_vec(claims).unwrap()).unwrap();
        assert_eq!(
            (claims["client_id"].as_str(), claims["scope"].as_str()),
            (Some(id), Some(scope))
        );
        checked += 1;
    }
    assert_eq!((checked, set.len()), (300, 3));
    assert_eq!(p.token_requests().await, 3, "one token request per configuration");
    let labels: BTreeSet<String> = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.kind == autopay_auth::EventKind::Mint)
        .map(|e| e.label.as_deref().unwrap().to_owned())
        .collect();
    assert_eq!(
        labels,
        BTreeSet::from(["other".into(), "reader".into(), "writer".into()])
    );
    // the same identity is the same client, however it is asked for
    let again = set.get(&config("reader", "jwt-es256", "read")).unwrap();
    assert_eq!(again.cache_key(), set.named("reader").unwrap().cache_key());
    assert_eq!(again.stats().mints, 1);
}

#[test]
fn a_private_key_the_native_client_cannot_sign_with_is_refused_when_it_is_built() {
    // a P-256 key whose private scalar is past the curve's order: no signature can be made
    let key = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"__________________________________________8"}"#;
    let config = Config::builder("https://as.example/token", "id")
        .client_auth(ClientAuth::PrivateKeyJwt)
        .private_key(PrivateKey::parse(key, None, None).unwrap())
        .build()
        .unwrap();
    let err = Client::new(config).unwrap_err();
    assert_eq!(
        (err.code(), err.field()),
        ("invalid_config", Some(field::PRIVATE_KEY))
    );
    assert!(!err.to_string().contains("____"), "never the key: {err}");
}

/// The store contract (as `autopay-auth/conformance` checks it for the npm adapters) against the
/// native Redis store and a real redis-server: values byte for byte, 50 concurrent claims of one
/// lock with one winner, a fenced release, lock expiry, compare-and-delete, 1 s TTLs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_native_redis_store_keeps_the_store_contract() {
    let redis = Redis::start();
    store_contract(RedisStore::open(&redis.url).unwrap().into()).await;
}

/// A throwaway Postgres cluster of Debian's on 127.0.0.1 (as root, the `postgres` user's: the
/// server refuses to run as root), stopped and removed when dropped.
struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    url: String,
}

impl Postgres {
    fn as_owner(&self, program: &Path) -> Command {
        if unsafe_is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn start() -> Self {
        let version = std::fs::read_dir("/usr/lib/postgresql")
            .expect("Postgres is installed (scripts/setup-test.sh)")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .max_by_key(|v| v.parse::<u32>().unwrap_or(0))
            .unwrap();
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("autopay-auth-native-pg-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let pg = Self {
            bin: PathBuf::from(format!("/usr/lib/postgresql/{version}/bin")),
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            dir,
        };
        if unsafe_is_root() {
            assert!(
                Command::new("chown")
                    .arg("postgres")
                    .arg(&pg.dir)
                    .status()
                    .unwrap()
                    .success()
            );
        }
        let data = pg.dir.join("data");
        let ok = pg
            .as_owner(&pg.bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "initdb");
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            pg.dir.display()
        );
        let ok = pg
            .as_owner(&pg.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-o", &options, "-l"])
            .arg(pg.dir.join("log"))
            .args(["-w", "start"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "pg_ctl start");
        pg
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-w", "stop", "-m", "immediate"])
            .stdout(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn unsafe_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// The same contract against the native Postgres store and a real Postgres server: and clients
/// on one table mint once, sharing the record with the npm adapter's keys and statements.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_native_postgres_store_keeps_the_store_contract_and_clients_on_it_mint_once() {
    let pg = Postgres::start();
    let store = PostgresStore::open(&pg.url).unwrap();
    store.create_table().await.unwrap();
    store_contract(store.clone().into()).await;

    let emu = Emulator::start();
    emu.post("faults", json!([{ "delayMs": 200 }])).await;
    let (_, infos) = six_clients_at_once(&emu, || {
        PostgresStore::open(&pg.url).unwrap().with_prefix("fleet:").into()
    })
    .await;
    let tokens: BTreeSet<String> = infos.into_iter().map(|i| i.access_token).collect();
    assert_eq!((tokens.len(), emu.token_requests().await), (1, 1));

    // a database that is down is an outage survived, not a failure
    drop(pg);
    let down = Client::builder(emu.config())
        .store(PostgresStore::open("postgres://postgres@127.0.0.1:1/postgres").unwrap())
        .build()
        .unwrap();
    assert_eq!(down.token_info().await.unwrap().source, Source::Network);
    assert!(down.stats().kv_errors >= 1);
}

/// Six clients of `emu`, each on a store of its own made by `store` (as six processes would
/// be), ten tasks each asking at once: the clients, and every task's token.
async fn six_clients_at_once(
    emu: &Emulator,
    store: impl Fn() -> NativeStore,
) -> (Vec<Client>, Vec<autopay_auth::native::TokenInfo>) {
    let clients: Vec<Client> = (0..6)
        .map(|_| Client::builder(emu.config()).store(store()).build().unwrap())
        .collect();
    let tasks: Vec<_> = clients
        .iter()
        .flat_map(|c| (0..10).map(move |_| c.clone()))
        .map(|c| tokio::spawn(async move { c.token_info().await.unwrap() }))
        .collect();
    let mut infos = Vec::new();
    for t in tasks {
        infos.push(t.await.unwrap());
    }
    (clients, infos)
}

/// The store contract, as `autopay-auth/conformance` checks it for the npm adapters.
async fn store_contract(store: NativeStore) {
    use autopay_auth::Store;
    let store = Arc::new(store);
    for v in ["{\"a\":1}", "42", " 7", "OK", "null", "héllo ✓", "v2.AbC-_9"] {
        store.put("value", v, 60).await.unwrap();
        assert_eq!(store.get("value").await.unwrap().as_deref(), Some(v));
    }
    assert_eq!(store.get("absent").await.unwrap(), None);
    let claims: Vec<_> = (0..50)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.put_if_absent("lock", &format!("owner-{i}"), 10_000).await })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, claim) in claims.into_iter().enumerate() {
        if claim.await.unwrap().unwrap() {
            winners.push(format!("owner-{i}"));
        }
    }
    assert_eq!(winners.len(), 1, "exactly one claim wins");
    let other = if winners[0] == "owner-0" {
        "owner-1"
    } else {
        "owner-0"
    };
    assert!(
        !store.delete_if("lock", other).await.unwrap(),
        "another owner frees nothing"
    );
    assert!(
        !store.put_if_absent("lock", other, 10_000).await.unwrap(),
        "still held"
    );
    assert!(
        store.delete_if("lock", &winners[0]).await.unwrap(),
        "the owner frees it"
    );
    assert!(
        store.put_if_absent("lock", other, 1_000).await.unwrap(),
        "free again"
    );
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert!(
        store.put_if_absent("lock", "later", 1_000).await.unwrap(),
        "an expired lock is free"
    );
    store.put("record", "v2.first", 60).await.unwrap();
    store.put("record", "v2.second", 60).await.unwrap();
    assert!(!store.delete_if("record", "v2.first").await.unwrap());
    assert_eq!(store.get("record").await.unwrap().as_deref(), Some("v2.second"));
    assert!(store.delete_if("record", "v2.second").await.unwrap());
    assert_eq!(store.get("record").await.unwrap(), None);
    store.put("brief", "x", 1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(
        store.get("brief").await.unwrap(),
        None,
        "a 1 s TTL, to the second"
    );
}
