//! # autopay-auth
//!
//! OAuth 2.0 client-credentials tokens for Autopay's APIs (and any token endpoint of the same
//! shape), cached so that a token is minted only when one is really needed.
//!
//! The core is **sans-I/O**: it makes no network calls, touches no store and reads no clock by
//! itself. The token lifecycle is a synchronous [`Machine`] fed events with `now`, answering with
//! [`Action`]s; the async [`TokenManager`] carries those out over small seams — [`TokenSource`]
//! (usually an [`Endpoint`] over a [`Transport`]), [`Store`], [`Clock`] and [`Notify`] —
//! implemented by the edges:
//!
//! - feature `npm`: the wasm-bindgen edge shipped as the npm package `autopay-auth`;
//! - feature `worker`: the Cloudflare Worker edge (router, proxy, the minting Durable Object);
//!   feature `worker-front`, its front alone, bound to the object of another Worker.
//!
//! The pieces, each in its own module: [`Config`] (what identifies a token, and its cache key),
//! the wire format ([`build_token_request`], [`process_token_response`]), the lifecycle
//! ([`Policy`], [`Phase`]), the stored [`TokenRecord`], the [`Machine`], the driver
//! ([`TokenManager`]), and the one error type ([`Error`], serialised as [`ErrorReport`]). The
//! sealing format ([`seal`]) and the assertion's layout ([`assertion`]) are modules of their own,
//! for hosts that seal or sign with their own parts; the root exports what users need.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// the front of a split deployment is a subset: what only the minter uses is dead there
#![cfg_attr(
    all(feature = "worker-front", not(feature = "worker"), not(feature = "npm")),
    allow(dead_code, unused_imports)
)]

mod api;
pub mod assertion;
mod authorize;
mod base64;
mod config;
pub mod dpop;
mod driver;
mod error;
mod events;
mod fleet;
mod host;
#[cfg(any(feature = "npm", feature = "worker-front"))]
mod js;
mod ledger;
mod lifecycle;
mod machine;
pub mod mtls;
mod quota;
mod record;
pub mod seal;
mod seams;
// the JS edges' settings (names and checks); natively only its tests use it
mod secret;
#[cfg_attr(not(all(feature = "npm", feature = "worker-front")), allow(dead_code))]
mod settings;
mod stats;
mod wire;

#[cfg(feature = "npm")]
mod npm;
#[cfg(feature = "npm")]
pub use npm::WasmClient;
#[cfg(feature = "worker-front")]
mod cloudflare;
#[cfg(all(feature = "native", not(target_arch = "wasm32")))]
pub mod native;

pub use api::{
    API_UNAUTHORIZED, ApiCall, ApiToken, DEFAULT_GATEWAY_RETRY_AFTER_SECS, UNFORWARDED_HEADERS,
    UNFORWARDED_PREFIXES, call_api, check_within_base, gateway_status, is_forwardable_request_header,
    join_api_path, should_retry_api_call,
};
pub use assertion::{KeyFormat, PrivateKey, SigningAlg};
pub use authorize::{authorize, present};
pub use config::{
    BodyFormat, CACHE_SCHEMA, ClientAuth, Config, ConfigBuilder, DEFAULT_API_BASE_URL, DEFAULT_AUDIENCE,
    DEFAULT_TOKEN_URL, check_url, is_autopay_token_url, url_host,
};
pub use driver::{Lease, Lookup, MINT_LOCK_SUFFIX, Refresh, TokenManager};
pub use error::{Error, ErrorReport, ServerError, code, field};
pub use events::{Event, EventKind};
pub use fleet::{FLEET_SCHEMA, FLEET_SUFFIX, FleetState, Gate, GateKind};
pub use host::{Host, Observe, Parts, Quiet};
pub use ledger::{LEDGER_FAILURES, LEDGER_HOURS, Ledger};
pub use lifecycle::{
    DEFAULT_EXPIRY_MARGIN_MS, DEFAULT_EXPIRY_MARGIN_RATIO, DEFAULT_REFRESH_JITTER_MS, DEFAULT_REFRESH_RATIO,
    DEFAULT_REQUEST_TIMEOUT_MS, DEFAULT_STORE_WAIT_MS, LOCK_GRACE_MS, MAX_REFRESH_BACKOFF_MS,
    MIN_REFRESH_BACKOFF_MS, Phase, Policy, StoreOutage, Timeline, refresh_backoff_ms,
};
pub use machine::{
    Action, BudgetWindow, CLOCK_SKEW_MS, Call, MINT_LOCK_GRACE_MS, MINT_POLL_MAX_MS, MINT_POLL_MIN_MS,
    Machine, Refusal, Served, Shared, Source, StoreError, StoreOp, StoreRead, Want,
};
pub use quota::{Declared, Limit, MAX_DECLARED, QUOTA_HEADERS, Window, declared, parse_limits};
pub use record::{MIN_STORE_TTL_SECS, TokenRecord};
pub use seal::Sealer;
pub use seams::{
    Clock, Endpoint, NoSigner, Notify, ReadOnlyStore, Seal, Signer, Store, TokenSource, Transport, Wakers,
};
pub use secret::ClientSecret;
pub use stats::Stats;
pub use wire::{
    GRANT_TYPE, MAX_ACCESS_TOKEN_LEN, MAX_LIFETIME_SECS, MAX_RESPONSE_HEADERS, MAX_TOKEN_RESPONSE_BYTES,
    TokenRequest, TokenResponse, build_token_request, is_bearer_token, is_token_type, parse_retry_after,
    process_token_response,
};
