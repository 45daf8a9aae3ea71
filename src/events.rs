//! What the lifecycle machine tells the world it did — for logs, metrics and alerts. Plain
//! data: a kind, the instant, and counts or a code; never a token, a secret or a store's value.

use serde::Serialize;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A token was obtained from the token source.
    Mint,
    /// A background refresh started (the token is stale).
    Refresh,
    /// A store call failed or timed out (survived).
    StoreError,
    /// A token request failed.
    TokenError,
    /// A rate limit started a cooldown: no token request before it ends.
    Cooldown,
    /// The mint budget refused a token request.
    BudgetExhausted,
    /// The shared store could not be reached by a caller without a token: it minted alone
    /// (`detail: "mint"`) or failed with `store_unavailable` (`detail: "fail"`).
    StoreOutage,
    /// The token endpoint declared a quota (`detail`: its name) with `remaining` of `limit`
    /// left until `retryAfter` seconds from now; the fleet stops asking before it runs out.
    Quota,
}

/// One event. Serialises as `{ "type", "at", … }` with only the fields its kind uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// When (ms since the Unix epoch).
    pub at: u64,
    /// Tokens minted so far (`mint`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mints: Option<u64>,
    /// The granted lifetime in seconds (`mint`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifetime_secs: Option<u64>,
    /// The error code (`token_error`, `cooldown`, `budget_exhausted`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    /// HTTP status of the token endpoint's answer (`token_error`, `cooldown`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Requests a declared quota has left (`quota`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
    /// A declared quota's size, when the endpoint said (`quota`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Seconds until a token request may be made again (`cooldown`, `budget_exhausted`), or
    /// until a declared quota resets (`quota`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// The failing store operation and the error's name, never its text (`store_error`); the
    /// limit that refused (`budget_exhausted`: `budget`, `per_hour`, `per_day`, `per_month` or
    /// a declared quota's name); the declared quota (`quota`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The client's label ([`crate::ConfigBuilder::label`]): which credential set this is, in a
    /// process or Worker that holds many. Never a secret or anything derived from one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<std::sync::Arc<str>>,
}

impl EventKind {
    /// `mint`, `refresh`, `store_error`, `token_error`, `cooldown`, `budget_exhausted`,
    /// `store_outage` or `quota`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Mint => "mint",
            EventKind::Refresh => "refresh",
            EventKind::StoreError => "store_error",
            EventKind::TokenError => "token_error",
            EventKind::Cooldown => "cooldown",
            EventKind::BudgetExhausted => "budget_exhausted",
            EventKind::StoreOutage => "store_outage",
            EventKind::Quota => "quota",
        }
    }

    /// The log level every edge writes it at: routine work is `debug`/`info`, what an operator
    /// should look at `warn`, a spent mint budget `error`.
    pub fn level(self) -> &'static str {
        match self {
            EventKind::Refresh | EventKind::Quota => "debug",
            EventKind::Mint => "info",
            EventKind::StoreError | EventKind::TokenError | EventKind::Cooldown | EventKind::StoreOutage => {
                "warn"
            }
            EventKind::BudgetExhausted => "error",
        }
    }
}

impl Event {
    /// An event of `kind` at `at`, with no fields yet.
    pub fn new(kind: EventKind, at: u64) -> Self {
        Self {
            kind,
            at,
            mints: None,
            lifetime_secs: None,
            code: None,
            status: None,
            remaining: None,
            limit: None,
            retry_after: None,
            detail: None,
            label: None,
        }
    }

    /// A one-line summary for logs; the numbers are in the event's fields.
    pub fn message(&self) -> &'static str {
        match self.kind {
            EventKind::Mint => "minted a token",
            EventKind::Refresh => "refreshing a stale token in the background",
            EventKind::StoreError => "a store call failed (the token is still served)",
            EventKind::TokenError => "a token request failed",
            EventKind::Cooldown => "rate limited: no token request until the cooldown ends (retryAfter)",
            EventKind::BudgetExhausted => {
                "mint budget exhausted: no token request until retryAfter (a fault or a bug keeps asking for tokens)"
            }
            EventKind::StoreOutage => {
                "the shared store cannot be reached by a caller without a token (detail: mint alone, or fail)"
            }
            EventKind::Quota => {
                "the token endpoint declared a quota (detail): remaining of limit until retryAfter"
            }
        }
    }
}
