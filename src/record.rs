//! The cached token and its stored form: a versioned JSON record carrying absolute times, so
//! every reader checks expiry itself and never trusts the store's TTL alone.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::config::CACHE_SCHEMA;
use crate::wire::{MAX_LIFETIME_SECS, is_bearer_token, is_token_type};

/// Workers KV refuses an `expirationTtl` below this many seconds: the shortest TTL a store is
/// assumed to take unless it says otherwise ([`crate::Store::min_ttl_secs`]).
pub const MIN_STORE_TTL_SECS: u64 = 60;

/// A token as cached. Times are milliseconds since the Unix epoch; `issued_at_ms` is when the
/// token request was sent. `Debug` shows only the token's length.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    /// The bearer token.
    pub access_token: String,
    /// Always `Bearer` (normalised).
    pub token_type: String,
    /// What the token may call, when the server said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// When the request that minted it was sent.
    pub issued_at_ms: u64,
    /// Absolute expiry: `issued_at_ms + expires_in`.
    pub expires_at_ms: u64,
}

impl fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRecord")
            .field(
                "access_token",
                &format_args!("[{} bytes]", self.access_token.len()),
            )
            .field("scope", &self.scope)
            .field("issued_at_ms", &self.issued_at_ms)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

#[derive(Serialize)]
struct Stored {
    v: u32,
    #[serde(flatten)]
    record: TokenRecord,
}

impl TokenRecord {
    /// Lifetime as the server granted it.
    pub fn lifetime_ms(&self) -> u64 {
        self.expires_at_ms.saturating_sub(self.issued_at_ms)
    }

    /// Whole seconds left before absolute expiry (0 once expired).
    pub fn remaining_secs(&self, now_ms: u64) -> u64 {
        self.expires_at_ms.saturating_sub(now_ms) / 1000
    }

    /// The plain form: `{"v":2,"access_token":…,"token_type":…,"scope":…,"issued_at_ms":…,"expires_at_ms":…}`
    /// — what [`crate::Sealer`] seals for a store, and what the Worker's minting authority
    /// hands its isolates.
    pub fn encode(&self) -> String {
        serde_json::to_string(&Stored {
            v: CACHE_SCHEMA,
            record: self.clone(),
        })
        .unwrap_or_default()
    }

    /// Reads a stored value; anything that is not a well-formed record of this schema is `None`
    /// (a miss), never an error. (Read field by field from a JSON value: no typed
    /// deserialisation, whose error messages would pull a float formatter into the wasm.)
    pub fn decode(value: &str) -> Option<Self> {
        let json: Value = serde_json::from_str(value).ok()?;
        let o = json.as_object()?;
        if o.get("v")?.as_u64()? != u64::from(CACHE_SCHEMA) {
            return None;
        }
        let text = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_owned);
        let r = TokenRecord {
            access_token: text("access_token")?,
            token_type: text("token_type")?,
            scope: match o.get("scope") {
                None => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return None,
            },
            issued_at_ms: o.get("issued_at_ms")?.as_u64()?,
            expires_at_ms: o.get("expires_at_ms")?.as_u64()?,
        };
        let sane = is_bearer_token(&r.access_token)
            && is_token_type(&r.token_type)
            && r.expires_at_ms > r.issued_at_ms
            && r.lifetime_ms() <= MAX_LIFETIME_SECS * 1000;
        sane.then_some(r)
    }

    /// The TTL to store this record with: the whole seconds left until absolute expiry, or
    /// `None` when that is below the store's shortest TTL `min_secs` (and never 0) — such a
    /// token stays in memory only, and is never clamped into a longer TTL.
    pub fn store_ttl_secs(&self, now_ms: u64, min_secs: u64) -> Option<u64> {
        let ttl = self.remaining_secs(now_ms);
        (ttl >= min_secs.max(1)).then_some(ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> TokenRecord {
        TokenRecord {
            access_token: "tok".into(),
            token_type: "Bearer".into(),
            scope: Some("customer_club".into()),
            issued_at_ms: 1_000,
            expires_at_ms: 121_000,
        }
    }

    #[test]
    fn round_trips_and_is_versioned() {
        let r = rec();
        let s = r.encode();
        assert!(s.contains("\"v\":2"), "{s}");
        assert_eq!(TokenRecord::decode(&s), Some(r));
        assert!(!format!("{:?}", rec()).contains("tok\""));
    }

    #[test]
    fn garbage_and_other_versions_are_misses() {
        for v in [
            "",
            "garbage",
            "{}",
            r#"{"v":3,"access_token":"t","token_type":"Bearer","issued_at_ms":1,"expires_at_ms":2}"#,
            r#"{"v":2,"access_token":"","token_type":"Bearer","issued_at_ms":1,"expires_at_ms":2}"#,
            r#"{"v":2,"access_token":"t","token_type":"Bearer","issued_at_ms":2,"expires_at_ms":2}"#,
            r#"{"v":2,"access_token":"t","token_type":"Bearer","issued_at_ms":1}"#,
            r#"{"v":2,"access_token":"t\r\nx","token_type":"Bearer","issued_at_ms":1,"expires_at_ms":2}"#,
            r#"{"v":2,"access_token":"t","token_type":"Bearer","issued_at_ms":1,"expires_at_ms":99999999999999}"#,
        ] {
            assert_eq!(TokenRecord::decode(v), None, "{v}");
        }
    }

    #[test]
    fn ttl_is_remaining_life_and_never_below_sixty() {
        let r = rec();
        assert_eq!(r.store_ttl_secs(1_000, MIN_STORE_TTL_SECS), Some(120));
        assert_eq!(r.store_ttl_secs(61_000, MIN_STORE_TTL_SECS), Some(60));
        assert_eq!(r.store_ttl_secs(61_001, MIN_STORE_TTL_SECS), None);
        assert_eq!(r.store_ttl_secs(500_000, MIN_STORE_TTL_SECS), None);
        // a store that takes a 1 s TTL keeps the last whole second, and never a 0 s TTL
        assert_eq!(r.store_ttl_secs(61_001, 1), Some(59));
        assert_eq!(r.store_ttl_secs(120_000, 1), Some(1));
        assert_eq!(r.store_ttl_secs(120_001, 1), None);
        assert_eq!(r.store_ttl_secs(120_001, 0), None);
    }
}
