//! The native Rust client (cargo feature `native`): the same core as the npm package and the
//! Worker, over tokio, reqwest (rustls) and — for a fleet — Redis. `Clone + Send + Sync`:
//! share one [`Client`] between every task of a service; processes (Rust or Node) sharing one
//! Redis mint once between them.
//!
//! ```no_run
//! # async fn run() -> Result<(), autopay_auth::Error> {
//! use autopay_auth::native::{Client, RedisStore};
//! use autopay_auth::{ClientSecret, Config, DEFAULT_AUDIENCE, DEFAULT_TOKEN_URL};
//!
//! let secret = ClientSecret::new(std::env::var("AUTOPAY_CLIENT_SECRET").unwrap_or_default());
//! let config = Config::new(DEFAULT_TOKEN_URL, "my-client", secret, DEFAULT_AUDIENCE)?;
//! let client = Client::builder(config)
//!     .store(RedisStore::open("redis://127.0.0.1:6379")?)
//!     .build()?;
//! let token = client.token().await?; // minted once, then served from memory or Redis
//! # let _ = token; Ok(()) }
//! ```

mod postgres;
mod redis;
mod set;
mod sign;
mod store;
mod transport;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use self::postgres::PostgresStore;
pub use self::redis::RedisStore;
pub use self::set::{ClientSet, ClientSetBuilder};
pub use self::sign::NativeSigner;
pub use self::store::NativeStore;
pub use self::transport::ReqwestTransport;

use crate::dpop::Prover;
use crate::{
    Clock, Config, Endpoint, Error, Event, Parts, Policy, Refusal, Sealer, Source, Stats, TokenManager,
    TokenRecord, Wakers,
};

/// The system clock and tokio's timers.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    fn sleep(&self, ms: u64) -> impl Future<Output = ()> {
        tokio::time::sleep(Duration::from_millis(ms))
    }
}

/// Whoever is told every [`Event`] (logs, metrics, alerts).
pub type Observer = Box<dyn Fn(&Event) + Send + Sync>;

type NativeHost = Parts<
    Endpoint<ReqwestTransport, TokioClock, NativeSigner>,
    NativeStore,
    TokioClock,
    Wakers,
    Sealer,
    Observer,
>;

/// A token and what is known of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    /// The access token, for `Authorization: Bearer …`.
    pub access_token: String,
    /// The token type as the token endpoint sent it (`Bearer`, `bearer`…).
    pub token_type: String,
    /// The scope granted, if the token endpoint said.
    pub scope: Option<String>,
    /// When it expires (ms since the Unix epoch).
    pub expires_at_ms: u64,
    /// Where it came from: this process's memory, the store, or a token request.
    pub source: Source,
}

impl TokenInfo {
    fn new(record: &TokenRecord, source: Source) -> Self {
        Self {
            access_token: record.access_token.clone(),
            token_type: record.token_type.clone(),
            scope: record.scope.clone(),
            expires_at_ms: record.expires_at_ms,
            source,
        }
    }
}

/// Tokens for one [`Config`]: from memory, else the store, else one token request shared by
/// every task that asks meanwhile. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Client {
    manager: TokenManager<NativeHost>,
    /// The DPoP key's prover, shared with the token requests.
    prover: Option<Arc<Prover<NativeSigner>>>,
    /// The token requests' HTTP client (with the client certificate, when there is one).
    http: reqwest::Client,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("cache_key", &self.manager.cache_key())
            .finish_non_exhaustive()
    }
}

/// How a [`Client`] is made: [`Client::builder`], then what differs from the defaults (memory
/// only, the default [`Policy`], a transport of its own, no observer).
pub struct ClientBuilder {
    config: Config,
    store: Option<NativeStore>,
    policy: Policy,
    transport: Option<ReqwestTransport>,
    observer: Option<Observer>,
    jitter: Option<f64>,
    roots: Vec<String>,
}

impl ClientBuilder {
    /// Share tokens through `store` — a [`RedisStore`] or a [`PostgresStore`] — with every
    /// process that uses it (Node processes on the npm adapter of the same store included).
    #[must_use]
    pub fn store(mut self, store: impl Into<NativeStore>) -> Self {
        self.store = Some(store.into());
        self
    }

    /// The lifecycle policy (refresh point, margins, timeouts, budget).
    #[must_use]
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Send token requests with `transport`.
    #[must_use]
    pub fn transport(mut self, transport: ReqwestTransport) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Tell `observer` every event. It is called synchronously and must not call the client.
    #[must_use]
    pub fn observer(mut self, observer: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.observer = Some(Box::new(observer));
        self
    }

    /// Trust `pem` (a CA certificate) besides the webpki roots, for a token endpoint and API on
    /// a private PKI (common with mutual TLS). Not used with [`Self::transport`].
    #[must_use]
    pub fn tls_root(mut self, pem: &str) -> Self {
        self.roots.push(pem.to_owned());
        self
    }

    /// This process's shift of the refresh point, in [-1, 1] (random unless told).
    #[must_use]
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = Some(jitter.clamp(-1.0, 1.0));
        self
    }

    /// The client. Fails with `invalid_config` when the policy is invalid, no HTTP client can
    /// be made, or the private key (for `private_key_jwt`) cannot sign — tried here once, so a
    /// key the crates refuse fails the build, never a mint.
    pub fn build(self) -> Result<Client, Error> {
        if let Some(key) = self.config.private_key() {
            NativeSigner::sign_now(key, b"autopay-auth: can this key sign?")?;
        }
        let transport = match self.transport {
            Some(t) => t,
            None => ReqwestTransport::configured(self.config.client_certificate(), &self.roots)?,
        };
        let http = transport.http().clone();
        let prover = match self.config.dpop_key() {
            Some(key) => {
                NativeSigner::sign_now(key, b"autopay-auth: can this key sign?")
                    .and_then(|_| NativeSigner::public_jwk_now(key))
                    .map_err(crate::dpop::about_the_key)?;
                Some(Arc::new(Prover::new(key.clone(), NativeSigner)))
            }
            None => None,
        };
        let mut source = Endpoint::new(self.config.clone(), transport, TokioClock).with_signer(NativeSigner);
        if let Some(prover) = &prover {
            source = source.with_prover(Arc::clone(prover));
        }
        let observer = self.observer.unwrap_or_else(|| Box::new(|_: &Event| {}));
        let host = Parts::new(source, self.store, TokioClock).with_observer(observer);
        let jitter = self.jitter.unwrap_or_else(random_jitter);
        let manager = TokenManager::new(&self.config, self.policy, jitter, host)?;
        Ok(Client {
            manager,
            prover,
            http,
        })
    }
}

/// A number in [-1, 1] from the OS's randomness (0 without any).
fn random_jitter() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::getrandom(&mut bytes).is_err() {
        return 0.0;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

impl Client {
    /// A client for `config` that keeps its token in memory, with the default policy.
    pub fn new(config: Config) -> Result<Self, Error> {
        Self::builder(config).build()
    }

    /// A builder for a client of `config`.
    pub fn builder(config: Config) -> ClientBuilder {
        ClientBuilder {
            config,
            store: None,
            policy: Policy::default(),
            transport: None,
            observer: None,
            jitter: None,
            roots: Vec::new(),
        }
    }

    /// An access token, for `Authorization: Bearer …`.
    pub async fn token(&self) -> Result<String, Error> {
        Ok(self.token_info().await?.access_token)
    }

    /// A token and what is known of it. A token past its refresh point is served while one
    /// refresh runs in the background (spawned on the current tokio runtime).
    pub async fn token_info(&self) -> Result<TokenInfo, Error> {
        let lookup = self.manager.get().await?;
        if let Some(refresh) = lookup.refresh {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn(refresh.run())),
                // not on a tokio runtime: the refresh runs before the answer
                Err(_) => refresh.run().await,
            }
        }
        Ok(TokenInfo::new(&lookup.served.record, lookup.served.source))
    }

    /// The headers that authorize a `method` call to `url` with the current token (through the
    /// one hook every edge uses, [`crate::authorize`]): `authorization: Bearer …` for a bearer
    /// token; for a DPoP-bound one `authorization: DPoP …` and a fresh `dpop` proof for exactly
    /// this method and URL (make one per request: a proof is not reusable). Set them on the
    /// request as they are.
    pub async fn authorize(&self, method: &str, url: &str) -> Result<Vec<(&'static str, String)>, Error> {
        let info = self.token_info().await?;
        let token = crate::ApiToken {
            token_type: info.token_type,
            access_token: info.access_token,
        };
        crate::present(self.prover.as_deref(), method, url, &token, TokioClock.now_ms()).await
    }

    /// Keeps the `DPoP-Nonce` a server sent with its answer to a call to `url` (RFC 9449 §9),
    /// for the proofs [`Self::authorize`] makes next: `true` when it is new — then a 401 with
    /// `WWW-Authenticate: DPoP error="use_dpop_nonce"` is worth one more try with fresh
    /// headers. Without a DPoP key, `false`.
    pub fn learn_nonce(&self, url: &str, nonce: Option<&str>) -> bool {
        self.prover.as_ref().is_some_and(|p| p.learn(url, nonce))
    }

    /// The HTTP client the token requests go through — with the configuration's client
    /// certificate when it has one: call the API through it, so a certificate-bound token
    /// (`cnf.x5t#S256`) is only ever sent over a connection that presents its certificate.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The thumbprint of the DPoP key (`cnf.jkt` of the tokens bound to it), if there is one.
    pub async fn dpop_thumbprint(&self) -> Option<String> {
        self.prover.as_ref()?.thumbprint().await.ok()
    }

    /// Forgets the token here and in the store, and every hold: the next call mints.
    pub async fn invalidate(&self) {
        self.manager.invalidate().await;
    }

    /// The API refused `access_token` (a 401): dropped where it is still the token held
    /// (compare-and-delete), unless a refusal hold keeps it — then do not retry.
    pub async fn refused(&self, access_token: &str) -> Refusal {
        self.manager.invalidate_token(access_token).await
    }

    /// What each quota the token endpoint declared has left, less what the fleet sent since it
    /// said: `(name, size, left, reset instant in ms)`.
    pub fn quotas(&self) -> Vec<(String, Option<u64>, u64, u64)> {
        self.manager.quotas()
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.manager.stats()
    }

    /// The store key of this client's tokens.
    pub fn cache_key(&self) -> &str {
        self.manager.cache_key()
    }
}

// What the issue promises: one client shared by every task, on any thread.
const _: () = {
    const fn shared<T: Clone + Send + Sync + 'static>() {}
    shared::<Client>();
};

#[allow(dead_code)]
fn futures_are_send(c: &Client) -> impl Send + '_ {
    async move {
        let _ = c.token_info().await;
        c.invalidate().await;
        c.refused("t").await
    }
}
