//! The seams between the sans-I/O core and the world: small traits whose real implementations
//! live in the edges (`npm`, `worker`), plus the adapters every edge shares. Futures carry no
//! `Send` bound: wasm is single-threaded.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use crate::assertion::{PrivateKey, assertion_signing_input, finish_assertion, fresh_jti};
use crate::config::Config;
use crate::dpop::{DPOP_HEADER, NONCE_HEADER, Prover, USE_DPOP_NONCE, token_endpoint_wants_nonce};
use crate::error::{Error, ServerError};
use crate::machine::{Shared, StoreError};
use crate::quota::{Declared, declared};
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
    /// request.headers`, and `request.body`, giving up after `timeout_ms`.
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

    /// The quotas the last answer declared (see [`crate::declared`]), taken once. A source that
    /// never hears them has none.
    fn declared(&self) -> Vec<Declared> {
        Vec::new()
    }
}

/// Signs `private_key_jwt` assertions with the client's key (the platform's WebCrypto in the JS
/// hosts, so no signature code is in their wasm).
pub trait Signer {
    /// The signature of `input` with `key` (for ECDSA, `r ‖ s`). A key the platform cannot
    /// import or use is `Error::InvalidConfig` naming [`crate::field::PRIVATE_KEY`].
    fn sign(&self, key: &PrivateKey, input: &[u8]) -> impl Future<Output = Result<Vec<u8>, Error>>;

    /// The public JWK of a PKCS#8 `key` (a DPoP proof's `jwk`), as [`crate::dpop::public_jwk`]
    /// writes it. The default cannot: give the DPoP key as a JWK.
    fn public_jwk(&self, key: &PrivateKey) -> impl Future<Output = Result<String, Error>> {
        let _ = key;
        async {
            Err(Error::config(
                crate::field::DPOP_KEY,
                "cannot be read as PKCS#8 here: give it as a private JWK",
            ))
        }
    }
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
    /// The DPoP key's prover, when tokens are bound with DPoP (shared with the API calls).
    prover: Option<Arc<Prover<G>>>,
    /// The quotas the last answer declared, until taken.
    declared: Mutex<Vec<Declared>>,
}

impl<T: Transport, C: Clock> Endpoint<T, C> {
    /// Mints for `config` through `transport`.
    pub fn new(config: Config, transport: T, clock: C) -> Self {
        Self {
            config,
            transport,
            clock,
            signer: NoSigner,
            prover: None,
            declared: Mutex::default(),
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
            prover: None,
            declared: self.declared,
        }
    }

    /// The same endpoint, with a DPoP proof on every token request (and a nonce learned from
    /// its answers). Set after [`Self::with_signer`].
    pub fn with_prover(mut self, prover: Arc<Prover<G>>) -> Self {
        self.prover = Some(prover);
        self
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
    /// One token request; with DPoP, a proof on it, and when the server answers
    /// `use_dpop_nonce` with a new nonce, one more request with it — within the same
    /// `timeout_ms`, so a flight never outlives what its lock was taken for.
    async fn mint(&self, _replacing: Option<&str>, timeout_ms: u64) -> Result<TokenRecord, Error> {
        let deadline = self.clock.now_ms().saturating_add(timeout_ms);
        let mut nonce_retried = false;
        loop {
            let assertion = self.assertion().await?;
            let mut request = build_token_request(&self.config, assertion.as_deref());
            let sent_at = self.clock.now_ms();
            if let Some(prover) = &self.prover {
                let proof = prover
                    .proof(TokenRequest::METHOD, &request.url, None, sent_at)
                    .await?;
                request.headers.push((DPOP_HEADER.to_owned(), proof));
            }
            let left = deadline.saturating_sub(sent_at).max(1);
            let response = self.transport.send(request, left).await?;
            let now = self.clock.now_ms();
            if let Some(prover) = &self.prover {
                let fresh = prover.learn(self.config.token_url(), response.header(NONCE_HEADER));
                if fresh && !nonce_retried && now < deadline && token_endpoint_wants_nonce(&response) {
                    nonce_retried = true;
                    continue;
                }
            }
            if let Ok(mut kept) = self.declared.lock() {
                *kept = declared(&response.headers, sent_at, now);
            }
            if self.prover.is_some() && token_endpoint_wants_nonce(&response) {
                // the nonce changed again before the retry arrived (or no time was left for
                // it): nothing is wrong with the client, so this is a failure that passes — the
                // next attempt carries the nonce just learned — never a hold on the fleet
                return Err(Error::Server(ServerError {
                    status: response.status,
                    error: Some(USE_DPOP_NONCE.to_owned()),
                    description: Some("the token endpoint's DPoP nonce changed before the retry".to_owned()),
                    retry_after: None,
                }));
            }
            return process_token_response(&response, sent_at, now, self.config.default_expires_in());
        }
    }

    fn declared(&self) -> Vec<Declared> {
        self.declared
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default()
    }
}

/// A shared key-value store with expiring entries (the shape of Workers KV).
pub trait Store {
    /// The value under `key`, if any.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<String>, StoreError>>;
    /// Stores `value` under `key` for `ttl_secs` seconds (never below [`Store::min_ttl_secs`]).
    fn put(&self, key: &str, value: &str, ttl_secs: u64) -> impl Future<Output = Result<(), StoreError>>;
    /// Removes `key`.
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StoreError>>;
    /// What this store can do, which decides what the machine asks of it: [`Shared::ReadWrite`]
    /// unless told ([`Shared::ReadOnly`] for a [`ReadOnlyStore`]: then nothing is even sealed
    /// for it; [`Shared::Locking`] for one whose [`Store::put_if_absent`] is atomic).
    fn shared(&self) -> Shared {
        Shared::ReadWrite
    }
    /// The shortest TTL, in seconds, that `put` accepts. A token with less life left than this
    /// stays in this instance's memory only. The default is Workers KV's 60 s; Redis, Upstash,
    /// Deno KV and DynamoDB take 1 s, so short-lived tokens are shared through them.
    fn min_ttl_secs(&self) -> u64 {
        MIN_STORE_TTL_SECS
    }
    /// Stores `value` under `key` for `ttl_ms` **only if the key is absent**, atomically:
    /// `true` if stored, `false` if the key was there. Asked only of a [`Shared::Locking`]
    /// store; the default refuses.
    fn put_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl_ms: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> {
        let _ = (key, value, ttl_ms);
        async { Err(StoreError("this store cannot lock".into())) }
    }
    /// Deletes `key` **only while its value is exactly `expected`**, in one atomic operation:
    /// `true` if it was deleted, `false` if the key held something else or nothing. The fenced
    /// release of the minting lock (its value names its owner) and the delete of a refused
    /// token's record go through it, so neither can remove what another instance wrote in the
    /// meantime. A [`Shared::Locking`] store must have it (Redis and Upstash: a script; DynamoDB:
    /// a conditional delete; Deno KV: an atomic check). The default deletes nothing: a store
    /// that cannot compare and delete at once leaves the record for the next token to replace.
    fn delete_if(&self, key: &str, expected: &str) -> impl Future<Output = Result<bool, StoreError>> {
        let _ = (key, expected);
        async { Ok(false) }
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
    fn shared(&self) -> Shared {
        Shared::ReadOnly
    }
    fn min_ttl_secs(&self) -> u64 {
        self.0.min_ttl_secs()
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
///
/// No wake-up is missed: a caller takes the [`Notify::epoch`] *before* it asks the machine, and
/// waits for any `notify_all` after that — so a flight that lands between the machine's answer
/// ("wait") and the wait itself still wakes it.
pub trait Notify {
    /// How many `notify_all`s there have been (hosts whose callers cannot interleave with a
    /// landing — one thread, no await in between — may answer 0 and ignore it in `wait`).
    fn epoch(&self) -> u64 {
        0
    }
    /// Resolves at the first `notify_all` after `epoch` (at once if there was one already; or
    /// earlier: a spurious wake is harmless).
    fn wait(&self, epoch: u64) -> impl Future<Output = ()>;
    /// Wakes every waiter.
    fn notify_all(&self);
}

/// [`Notify`] by Rust wakers: for hosts where any task may resume any other (native code on
/// any thread, and the Durable Object, whose requests share one I/O context).
#[derive(Default)]
pub struct Wakers(Mutex<(u64, Vec<Waker>)>);

impl Wakers {
    fn state(&self) -> std::sync::MutexGuard<'_, (u64, Vec<Waker>)> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Notify for Wakers {
    fn epoch(&self) -> u64 {
        self.state().0
    }

    fn wait(&self, seen: u64) -> impl Future<Output = ()> {
        std::future::poll_fn(move |cx| {
            let mut state = self.state();
            if state.0 != seen {
                return Poll::Ready(());
            }
            state.1.push(cx.waker().clone());
            Poll::Pending
        })
    }

    fn notify_all(&self) {
        let wakers = {
            let mut state = self.state();
            state.0 += 1;
            std::mem::take(&mut state.1)
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_landing_between_the_machines_answer_and_the_wait_still_wakes() {
        let wakers = Wakers::default();
        let epoch = wakers.epoch(); // taken before asking the machine
        wakers.notify_all(); // the flight lands before the caller waits
        let waited = futures_util::FutureExt::now_or_never(wakers.wait(epoch));
        assert_eq!(waited, Some(()), "the wait ends at once");
        let later = futures_util::FutureExt::now_or_never(wakers.wait(wakers.epoch()));
        assert_eq!(later, None, "with nothing new, it waits");
    }
}
