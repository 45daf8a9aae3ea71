//! The one error type of the library, its stable `code`s, and [`ErrorReport`]: the one
//! serialisable form every edge converts (the JS `AutopayAuthError`, the Durable Object ↔
//! isolate messages, the Worker's HTTP error bodies) — converted, never re-mapped field by field.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The stable error codes, defined once. The TypeScript union in `js/index.d.ts` is checked
/// against this list by a test.
pub mod code {
    /// 401 or 403 from the token endpoint: the credentials were refused.
    pub const ACCESS_DENIED: &str = "access_denied";
    /// Another 4xx from the token endpoint.
    pub const INVALID_REQUEST: &str = "invalid_request";
    /// 429 from the token endpoint.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// 5xx from the token endpoint.
    pub const SERVER_ERROR: &str = "server_error";
    /// The token request got no answer.
    pub const NETWORK: &str = "network";
    /// The token request timed out.
    pub const TIMEOUT: &str = "timeout";
    /// The token endpoint's answer broke the contract.
    pub const INVALID_RESPONSE: &str = "invalid_response";
    /// A setting or option is missing or malformed.
    pub const INVALID_CONFIG: &str = "invalid_config";
    /// An argument to a call was refused.
    pub const INVALID_ARGUMENT: &str = "invalid_argument";
    /// The mint budget is spent: no token request before `retryAfter`.
    pub const MINT_BUDGET_EXHAUSTED: &str = "mint_budget_exhausted";
    /// The shared store could not be reached, or its minting lock stayed held past its life, so
    /// the fleet could not agree on who mints (see `storeOutage`): no token request was made.
    pub const STORE_UNAVAILABLE: &str = "store_unavailable";
    /// Every code, in a stable order.
    pub const ALL: &[&str] = &[
        ACCESS_DENIED,
        INVALID_REQUEST,
        RATE_LIMITED,
        SERVER_ERROR,
        NETWORK,
        TIMEOUT,
        INVALID_RESPONSE,
        INVALID_CONFIG,
        INVALID_ARGUMENT,
        MINT_BUDGET_EXHAUSTED,
        STORE_UNAVAILABLE,
    ];
}

/// The core's names for the settings an `invalid_config` error can name. Each edge maps them to
/// its own vocabulary (`tokenUrl` for npm, `AUTOPAY_TOKEN_URL` for the Worker).
pub mod field {
    /// The token endpoint URL.
    pub const TOKEN_URL: &str = "token_url";
    /// The client id.
    pub const CLIENT_ID: &str = "client_id";
    /// The client secret.
    pub const CLIENT_SECRET: &str = "client_secret";
    /// The audience.
    pub const AUDIENCE: &str = "audience";
    /// The API base URL.
    pub const API_BASE_URL: &str = "api_base_url";
    /// How the token request's body is encoded ([`crate::BodyFormat`]).
    pub const TOKEN_REQUEST: &str = "token_request";
    /// How the client authenticates ([`crate::ClientAuth`]).
    pub const CLIENT_AUTH: &str = "client_auth";
    /// The private key for `private_key_jwt`.
    pub const PRIVATE_KEY: &str = "private_key";
    /// The private key's JWS algorithm.
    pub const PRIVATE_KEY_ALG: &str = "private_key_alg";
    /// The private key's id (`kid`).
    pub const PRIVATE_KEY_ID: &str = "private_key_id";
    /// The X.509 certificate of the `private_key_jwt` key (its `x5t#S256`).
    pub const CERTIFICATE: &str = "certificate";
    /// Whether the assertion carries the certificate chain (`x5c`).
    pub const X5C: &str = "x5c";
    /// The client certificate (RFC 8705), PEM.
    pub const CLIENT_CERTIFICATE: &str = "client_certificate";
    /// The client certificate's private key, PKCS#8 PEM.
    pub const CLIENT_CERTIFICATE_KEY: &str = "client_certificate_key";
    /// A CA certificate trusted besides the webpki roots (native).
    pub const TLS_ROOT: &str = "tls_root";
    /// The DPoP key (RFC 9449) that binds tokens to the client.
    pub const DPOP_KEY: &str = "dpop_key";
    /// The DPoP key's JWS algorithm.
    pub const DPOP_KEY_ALG: &str = "dpop_key_alg";
    /// The scope asked for.
    pub const SCOPE: &str = "scope";
    /// The resource indicators (RFC 8707).
    pub const RESOURCE: &str = "resource";
    /// The client's label in events, logs and telemetry.
    pub const LABEL: &str = "label";
    /// Further token-request parameters.
    pub const TOKEN_PARAMS: &str = "token_params";
    /// Further token-request headers.
    pub const TOKEN_HEADERS: &str = "token_headers";
    /// The lifetime assumed when an answer has no `expires_in`.
    pub const DEFAULT_EXPIRES_IN: &str = "default_expires_in";
    /// [`crate::Policy::refresh_ratio`].
    pub const REFRESH_RATIO: &str = "refresh_ratio";
    /// [`crate::Policy::expiry_margin_ms`].
    pub const EXPIRY_MARGIN: &str = "expiry_margin";
    /// [`crate::Policy::expiry_margin_ratio`].
    pub const EXPIRY_MARGIN_RATIO: &str = "expiry_margin_ratio";
    /// [`crate::Policy::refresh_jitter_ms`].
    pub const REFRESH_JITTER: &str = "refresh_jitter";
    /// [`crate::Policy::request_timeout_ms`].
    pub const REQUEST_TIMEOUT: &str = "request_timeout";
    /// [`crate::Policy::mint_attempts`].
    pub const MINT_ATTEMPTS: &str = "mint_attempts";
    /// [`crate::Policy::budget_burst`] and [`crate::Policy::budget_window_ms`].
    pub const MINT_BUDGET: &str = "mint_budget";
    /// [`crate::Policy::store_timeout_ms`].
    pub const STORE_TIMEOUT: &str = "store_timeout";
    /// [`crate::Policy::store_outage`].
    pub const STORE_OUTAGE: &str = "store_outage";
    /// [`crate::Policy::store_wait_ms`].
    pub const STORE_WAIT: &str = "store_wait";
}

/// What the token endpoint said when it refused: RFC 6749 §5.2 fields plus the HTTP status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError {
    /// HTTP status of the answer.
    pub status: u16,
    /// The server's `error` field, when the body had one.
    pub error: Option<String>,
    /// The server's `error_description` field, when the body had one.
    pub description: Option<String>,
    /// Seconds the server asked us to wait (`Retry-After`), when it said.
    pub retry_after: Option<u64>,
}

/// Every way getting a token can fail.
///
/// `Debug` and `Display` never contain the client secret or a raw response body.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// 401 or 403: the credentials were refused. Do not retry in a loop.
    AccessDenied(ServerError),
    /// Another 4xx: the request was malformed or refused (wrong audience, grant type, …).
    InvalidRequest(ServerError),
    /// 429: rate limited; see `retry_after`.
    RateLimited(ServerError),
    /// 5xx: the token service failed.
    Server(ServerError),
    /// The request did not reach the server or no answer came back.
    Network {
        /// The host the request was for (never a path, query, body or secret).
        host: String,
        /// What the platform said (the request body is never echoed).
        message: String,
    },
    /// No answer within the configured timeout.
    Timeout {
        /// The host the request was for.
        host: String,
        /// The timeout that ran out, in milliseconds.
        after_ms: u64,
    },
    /// The server answered, but not with what the contract promises. Nothing is cached.
    InvalidResponse {
        /// HTTP status of the answer.
        status: u16,
        /// Which rule the answer broke.
        reason: String,
    },
    /// A setting is missing or malformed.
    InvalidConfig {
        /// The setting: one of [`field`]'s names, or an edge's own option name.
        field: String,
        /// What is wrong with it (never its value).
        reason: String,
    },
    /// An argument to a call was refused (for example a path that leaves the API base URL).
    InvalidArgument {
        /// What is wrong with it.
        reason: String,
    },
    /// The mint budget is spent: this many token requests in one window is a fault or a bug,
    /// never normal rotation, and no more are made before `retry_after` seconds.
    MintBudgetExhausted {
        /// Seconds until the budget allows a token request again.
        retry_after: u64,
    },
    /// The shared store could not be reached (or its minting lock stayed held past its life),
    /// and this instance may not mint without it: no token request was made.
    StoreUnavailable {
        /// What failed (never a stored value).
        reason: String,
    },
}

impl Error {
    /// The stable code (one of [`code::ALL`]).
    pub fn code(&self) -> &'static str {
        match self {
            Error::AccessDenied(_) => code::ACCESS_DENIED,
            Error::InvalidRequest(_) => code::INVALID_REQUEST,
            Error::RateLimited(_) => code::RATE_LIMITED,
            Error::Server(_) => code::SERVER_ERROR,
            Error::Network { .. } => code::NETWORK,
            Error::Timeout { .. } => code::TIMEOUT,
            Error::InvalidResponse { .. } => code::INVALID_RESPONSE,
            Error::InvalidConfig { .. } => code::INVALID_CONFIG,
            Error::InvalidArgument { .. } => code::INVALID_ARGUMENT,
            Error::MintBudgetExhausted { .. } => code::MINT_BUDGET_EXHAUSTED,
            Error::StoreUnavailable { .. } => code::STORE_UNAVAILABLE,
        }
    }

    /// The server's answer, for the variants that have one.
    pub fn server(&self) -> Option<&ServerError> {
        match self {
            Error::AccessDenied(s) | Error::InvalidRequest(s) | Error::RateLimited(s) | Error::Server(s) => {
                Some(s)
            }
            _ => None,
        }
    }

    /// HTTP status of the token endpoint's answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::InvalidResponse { status, .. } => Some(*status),
            _ => self.server().map(|s| s.status),
        }
    }

    /// Whether the failure happened here, before anything was sent (bad configuration, no
    /// signer, a key the platform refuses): it says nothing of the token endpoint, so it never
    /// closes the fleet's gate or spends its budget.
    pub fn is_local(&self) -> bool {
        matches!(self, Error::InvalidConfig { .. } | Error::InvalidArgument { .. })
    }

    /// Seconds to wait before asking again, when the server (or the mint budget) said.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::MintBudgetExhausted { retry_after } => Some(*retry_after),
            _ => self.server().and_then(|s| s.retry_after),
        }
    }

    /// The setting named by an `InvalidConfig` error.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::InvalidConfig { field, .. } => Some(field),
            _ => None,
        }
    }

    /// An `InvalidConfig` error naming `field`.
    pub fn config(field: &str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    /// An `InvalidArgument` error.
    pub fn argument(reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            reason: reason.into(),
        }
    }

    /// The same error with its setting renamed by `name` (an edge's vocabulary for the core's
    /// [`field`] names; names it does not know stay as they are).
    pub fn renamed(self, name: impl Fn(&str) -> Option<&'static str>) -> Self {
        match self {
            Error::InvalidConfig { field, reason } => Error::InvalidConfig {
                field: name(&field).map_or(field, str::to_owned),
                reason,
            },
            other => other,
        }
    }

    /// The serialisable form, for every edge.
    pub fn report(&self) -> ErrorReport {
        let server = self.server();
        let (host, reason, timeout_ms) = match self {
            Error::Network { host, message } => (Some(host.clone()), Some(message.clone()), None),
            Error::Timeout { host, after_ms } => (Some(host.clone()), None, Some(*after_ms)),
            Error::InvalidResponse { reason, .. }
            | Error::InvalidConfig { reason, .. }
            | Error::InvalidArgument { reason }
            | Error::StoreUnavailable { reason } => (None, Some(reason.clone()), None),
            _ => (None, None, None),
        };
        ErrorReport {
            code: self.code().to_owned(),
            message: self.to_string(),
            status: self.status(),
            error: server.and_then(|s| s.error.clone()),
            description: server.and_then(|s| s.description.clone()),
            retry_after: self.retry_after(),
            field: self.field().map(str::to_owned),
            host,
            reason,
            timeout_ms,
        }
    }
}

/// An [`Error`] as data: `{ code, message, status, error, description, retryAfter, field,
/// host, reason, timeoutMs }`. Converts back to the same [`Error`] without loss. Never holds
/// the secret or a raw response body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorReport {
    /// One of [`code::ALL`].
    pub code: String,
    /// The human-readable message (the error's `Display`).
    pub message: String,
    /// HTTP status of the token endpoint's answer.
    pub status: Option<u16>,
    /// The server's `error`.
    pub error: Option<String>,
    /// The server's `error_description`.
    pub description: Option<String>,
    /// Seconds to wait before asking again.
    pub retry_after: Option<u64>,
    /// The setting at fault (`invalid_config`).
    pub field: Option<String>,
    /// The host a failed request was for (`network`, `timeout`).
    pub host: Option<String>,
    /// The detail behind the message (`network`, `invalid_*`).
    pub reason: Option<String>,
    /// The timeout that ran out (`timeout`).
    pub timeout_ms: Option<u64>,
}

impl ErrorReport {
    /// Reads a report from its JSON (the camelCase form it serialises to), field by field from a
    /// JSON value: no typed deserialisation, whose error paths would bring a float formatter
    /// into the wasm. `None` when it is not one.
    pub fn decode(json: &str) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(json).ok()?;
        Self::read(v.as_object()?, "retryAfter", "timeoutMs")
    }

    /// A report from a JSON object's fields, whose two compound names are given (the stored
    /// fleet state writes them snake_case); a missing `message` is empty.
    pub(crate) fn read(
        o: &serde_json::Map<String, serde_json::Value>,
        retry_after: &str,
        timeout_ms: &str,
    ) -> Option<Self> {
        let text = |k: &str| o.get(k).and_then(serde_json::Value::as_str).map(str::to_owned);
        let num = |k: &str| o.get(k).and_then(serde_json::Value::as_u64);
        Some(Self {
            code: text("code")?,
            message: text("message").unwrap_or_default(),
            status: num("status").and_then(|s| u16::try_from(s).ok()),
            error: text("error"),
            description: text("description"),
            retry_after: num(retry_after),
            field: text("field"),
            host: text("host"),
            reason: text("reason"),
            timeout_ms: num(timeout_ms),
        })
    }
}

impl TryFrom<ErrorReport> for Error {
    type Error = ErrorReport;

    /// The [`Error`] a report was made from; the report back when its code is unknown or a
    /// field its code needs is missing.
    fn try_from(r: ErrorReport) -> Result<Self, ErrorReport> {
        let server = |r: &ErrorReport| {
            r.status.map(|status| ServerError {
                status,
                error: r.error.clone(),
                description: r.description.clone(),
                retry_after: r.retry_after,
            })
        };
        let e = match r.code.as_str() {
            code::ACCESS_DENIED => server(&r).map(Error::AccessDenied),
            code::INVALID_REQUEST => server(&r).map(Error::InvalidRequest),
            code::RATE_LIMITED => server(&r).map(Error::RateLimited),
            code::SERVER_ERROR => server(&r).map(Error::Server),
            code::NETWORK => r
                .host
                .clone()
                .zip(r.reason.clone())
                .map(|(host, message)| Error::Network { host, message }),
            code::TIMEOUT => r
                .host
                .clone()
                .zip(r.timeout_ms)
                .map(|(host, after_ms)| Error::Timeout { host, after_ms }),
            code::INVALID_RESPONSE => r
                .status
                .zip(r.reason.clone())
                .map(|(status, reason)| Error::InvalidResponse { status, reason }),
            code::INVALID_CONFIG => r
                .field
                .clone()
                .zip(r.reason.clone())
                .map(|(field, reason)| Error::InvalidConfig { field, reason }),
            code::INVALID_ARGUMENT => r.reason.clone().map(|reason| Error::InvalidArgument { reason }),
            code::STORE_UNAVAILABLE => r.reason.clone().map(|reason| Error::StoreUnavailable { reason }),
            code::MINT_BUDGET_EXHAUSTED => r
                .retry_after
                .map(|retry_after| Error::MintBudgetExhausted { retry_after }),
            _ => None,
        };
        e.ok_or(r)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::AccessDenied(s) | Error::InvalidRequest(s) | Error::RateLimited(s) | Error::Server(s) => {
                write!(f, "token endpoint answered HTTP {}", s.status)?;
                if let Some(e) = &s.error {
                    write!(f, ": {e}")?;
                }
                if let Some(d) = &s.description {
                    write!(f, " ({d})")?;
                }
                if let Some(r) = s.retry_after {
                    write!(f, "; retry after {r} s")?;
                }
                Ok(())
            }
            Error::Network { host, message } => write!(f, "token request to {host} failed: {message}"),
            Error::Timeout { host, after_ms } => {
                write!(f, "token request to {host} timed out after {after_ms} ms")
            }
            Error::InvalidResponse { status, reason } => {
                write!(f, "invalid token response (HTTP {status}): {reason}")
            }
            Error::InvalidConfig { field, reason } => write!(f, "invalid `{field}`: {reason}"),
            Error::InvalidArgument { reason } => write!(f, "invalid argument: {reason}"),
            Error::MintBudgetExhausted { retry_after } => write!(
                f,
                "mint budget exhausted: no token request for this client before {retry_after} s from now"
            ),
            Error::StoreUnavailable { reason } => {
                write!(
                    f,
                    "no token: the shared store is unavailable ({reason}), and no token request was made"
                )
            }
        }
    }
}

impl std::error::Error for Error {}
