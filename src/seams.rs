//! The seams between the sans-I/O core and the world: small traits whose real implementations
//! live in the edges (`npm`, `worker`), plus the adapters every edge shares. Futures carry no
//! `Send` bound: wasm is single-threaded.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::task::{Poll, Waker};

use crate::assertion::{PrivateKey, assertion_signing_input, finish_assertion, fresh_jti};
use crate::config::Config;
use crate::error::Error;
use crate::record::{MIN_STORE_TTL_SECS, TokenRecord};
use crate::secret::ClientSecret;
use crate::wire::{TokenRequest, TokenResponse, build_token_request, process_token_response};

/// Milliseconds since the Unix epoch, and waiting.
pub trait Clock {
    /// The current time.
    fn now_ms(&self) -> u64;
    /// Resolves after `ms` milliseconds.
    fn sleep(&self, ms: u64) -> impl Future<Output = ()>;
}

/// Sends one token request. Failing to get any answer is `Error::Network` or `Error::Timeout`.
pub trait Transport {
    /// `POST request.url` with `Content-Type: request.content_type`, `Authorization:
    /// request.authorization` when it is set, and `request.body`, giving up after `timeout_ms`.
    fn send(
        &self,
        request: TokenRequest,
        timeout_ms: u64,
    ) -> impl Future<Output = Result<TokenResponse, Error>>;
}

/// Where new tokens come from (Go's `TokenSource`): the token endpoint ([`Endpoint`]), or a
/// minting authority that itself caches (the Worker's Durable Object).
pub trait TokenSource {
    /// A new token. `replacing` is the access token the caller holds and considers stale,
    /// expired or refused (`None` on a cold start), so an authority can tell "give me yours"
    /// from "replace this one".
    fn mint(
        &self,
        replacing: Option<&str>,
        timeout_ms: u64,
    ) -> impl Future<Output = Result<TokenRecord, Error>>;
}

/// Signs `private_key_jwt` assertions with the client's key (the platform's WebCrypto in the JS
/// hosts, so no signature code is in their wasm).
pub trait Signer {
    /// The signature of `input` with `key` (for ECDSA, `r ‖ s`). A key the platform cannot
    /// import or use is `Error::InvalidConfig` naming [`crate::field::PRIVATE_KEY`].
    fn sign(&self, key: &PrivateKey, input: &[u8]) -> impl Future<Output = Result<Vec<u8>, Error>>;
}

/// The [`Signer`] of a host that cannot sign: every `private_key_jwt` request fails with
/// `invalid_config` before anything is sent.
pub struct NoSigner;

impl Signer for NoSigner {
    async fn sign(&self, _key: &PrivateKey, _input: &[u8]) -> Result<Vec<u8>, Error> {
        Err(Error::config(
            crate::field::PRIVATE_KEY,
            "cannot be used here: this host has no signer for private_key_jwt",
        ))
    }
}

/// The token endpoint as a [`TokenSource`]: [`build_token_request`] (with a freshly signed
/// assertion for `private_key_jwt`), one [`Transport`] call, [`process_token_response`] with
/// expiry counted from when the request was sent.
pub struct Endpoint<T, C, G = NoSigner> {
    config: Config,
    transport: T,
    clock: C,
    signer: G,
}

impl<T: Transport, C: Clock> Endpoint<T, C> {
    /// Mints for `config` through `transport`.
    pub fn new(config: Config, transport: T, clock: C) -> Self {
        Self {
            config,
            transport,
            clock,
            signer: NoSigner,
        }
    }
}

impl<T, C, G> Endpoint<T, C, G> {
    /// The same endpoint, signing assertions with `signer`.
    pub fn with_signer<S: Signer>(self, signer: S) -> Endpoint<T, C, S> {
        Endpoint {
            config: self.config,
            transport: self.transport,
            clock: self.clock,
            signer,
        }
    }
}

impl<T: Transport, C: Clock, G: Signer> Endpoint<T, C, G> {
    /// A fresh assertion for `private_key_jwt` (a new `jti` and `iat` each time), else `None`.
    async fn assertion(&self) -> Result<Option<String>, Error> {
        let Some(key) = self.config.private_key() else {
            return Ok(None);
        };
        let jti = fresh_jti().ok_or_else(|| {
            Error::config(
                crate::field::PRIVATE_KEY,
                "cannot be used: this platform has no randomness",
            )
        })?;
        let input = assertion_signing_input(
            key,
            self.config.client_id(),
            self.config.token_url(),
            self.clock.now_ms(),
            &jti,
        );
        let signature = self.signer.sign(key, input.as_bytes()).await?;
        Ok(Some(finish_assertion(&input, &signature)))
    }
}

impl<T: Transport, C: Clock, G: Signer> TokenSource for Endpoint<T, C, G> {
    async fn mint(&self, _replacing: Option<&str>, timeout_ms: u64) -> Result<TokenRecord, Error> {
        let assertion = self.assertion().await?;
        let request = build_token_request(&self.config, assertion.as_deref());
        let sent_at = self.clock.now_ms();
        let response = self.transport.send(request, timeout_ms).await?;
        process_token_response(
            &response,
            sent_at,
            self.clock.now_ms(),
            self.config.default_expires_in(),
        )
    }
}

/// A store failure: counted and survived, never shown to the caller as a token error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError(pub String);

/// A shared key-value store with expiring entries (the shape of Workers KV).
pub trait Store {
    /// The value under `key`, if any.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<String>, StoreError>>;
    /// Stores `value` under `key` for `ttl_secs` seconds (never below [`Store::min_ttl_secs`]).
    fn put(&self, key: &str, value: &str, ttl_secs: u64) -> impl Future<Output = Result<(), StoreError>>;
    /// Removes `key`.
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StoreError>>;
    /// Whether `put` and `delete` write anything (`false` for a [`ReadOnlyStore`]: then no
    /// record is even sealed for it).
    fn writes(&self) -> bool {
        true
    }
    /// The shortest TTL, in seconds, that `put` accepts. A token with less life left than this
    /// stays in this instance's memory only. The default is Workers KV's 60 s; Redis, Upstash,
    /// Deno KV and DynamoDB take 1 s, so short-lived tokens are shared through them.
    fn min_ttl_secs(&self) -> u64 {
        MIN_STORE_TTL_SECS
    }
    /// Stores `value` under `key` for `ttl_ms` **only if the key is absent**, atomically:
    /// `Some(true)` if stored, `Some(false)` if the key was there, `None` if this store cannot
    /// (the default). A store that can lets processes sharing it mint once between them.
    fn put_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl_ms: u64,
    ) -> impl Future<Output = Result<Option<bool>, StoreError>> {
        let _ = (key, value, ttl_ms);
        async { Ok(None) }
    }
}

/// A view of a store that reads but never writes: for a cache in front of a minting authority
/// that writes (and deletes from) the store itself, so each token is written once.
pub struct ReadOnlyStore<S>(pub S);

impl<S: Store> Store for ReadOnlyStore<S> {
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<String>, StoreError>> {
        self.0.get(key)
    }
    async fn put(&self, _key: &str, _value: &str, _ttl_secs: u64) -> Result<(), StoreError> {
        Ok(())
    }
    async fn delete(&self, _key: &str) -> Result<(), StoreError> {
        Ok(())
    }
    fn writes(&self) -> bool {
        false
    }
}

/// Seals values for a shared store and opens them again — the format of [`crate::Sealer`]
/// (AES-256-GCM, key by HKDF-SHA256 from the secret, the key the value is stored under as
/// context). [`crate::Sealer`] implements it with RustCrypto; the JS hosts with the platform's
/// WebCrypto, which keeps the cipher out of their wasm.
pub trait Seal {
    /// The sealer of the values stored under `context` (a cache key, or its fleet-state key),
    /// keyed from `secret`.
    fn new(secret: &ClientSecret, context: &str) -> Self;
    /// The stored form of `plain` with a fresh random nonce; `None` when the platform cannot
    /// seal (no randomness or no crypto) — then nothing is stored.
    fn seal_text(&self, plain: &str) -> impl Future<Output = Option<String>>;
    /// The plain text in a stored value, if it opens; anything else is `None`.
    fn open_text(&self, value: &str) -> impl Future<Output = Option<String>>;
    /// The stored form of `record`.
    fn seal(&self, record: &TokenRecord) -> impl Future<Output = Option<String>> {
        async move { self.seal_text(&record.encode()).await }
    }
    /// The record in a stored value, if it opens and is well formed; anything else is `None`.
    fn open(&self, value: &str) -> impl Future<Output = Option<TokenRecord>> {
        async move { TokenRecord::decode(&self.open_text(value).await?) }
    }
}

/// How callers of one host wait for the flight under way to end (the waiting half of
/// single-flight; the deciding half is the machine's). `notify_all` wakes every waiter; a waiter
/// that wakes early just asks the machine again.
pub trait Notify: Default {
    /// Resolves at the next `notify_all` (or earlier: a spurious wake is harmless).
    fn wait(&self) -> impl Future<Output = ()>;
    /// Wakes every waiter.
    fn notify_all(&self);
}

/// [`Notify`] by Rust wakers: for hosts where any task may resume any other (native code, and
/// the Durable Object, whose requests share one I/O context).
#[derive(Default)]
pub struct Wakers {
    generation: Cell<u64>,
    wakers: RefCell<Vec<Waker>>,
}

impl Notify for Wakers {
    fn wait(&self) -> impl Future<Output = ()> {
        let seen = self.generation.get();
        std::future::poll_fn(move |cx| {
            if self.generation.get() != seen {
                return Poll::Ready(());
            }
            self.wakers.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        })
    }

    fn notify_all(&self) {
        self.generation.set(self.generation.get() + 1);
        for w in self.wakers.take() {
            w.wake();
        }
    }
}
