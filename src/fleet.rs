//! What a fleet shares beside the token record, so that a `Retry-After` or a refusal seen by
//! one instance is kept by every instance on the same store: the *gate* (a cooldown, a hold or
//! a backoff, with the error that started it) and the mint budget's window. Stored sealed, like
//! the record, under `{cache key}:fleet`, by whoever made the last token request (the holder of
//! the minting lock, where the store has one); read with the record by every flight.
//!
//! Plain data, read field by field (no typed deserialisation: see [`crate::TokenRecord::decode`]).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, ErrorReport};
use crate::quota::{Declared, MAX_DECLARED};

/// Appended to the cache key for the fleet state.
pub const FLEET_SUFFIX: &str = ":fleet";
/// The fleet state's schema version.
pub const FLEET_SCHEMA: u64 = 1;

/// Why no token request may be made for a while.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateKind {
    /// Rate limited (429 or `Retry-After`), or the mint budget is spent.
    Cooldown,
    /// The credentials or the request were refused (4xx, an invalid answer); grows on repeats.
    Hold,
    /// A token request failed in a way that may pass (5xx, network, timeout).
    Backoff,
}

impl GateKind {
    /// Its name: `cooldown`, `hold` or `backoff`.
    pub fn as_str(self) -> &'static str {
        match self {
            GateKind::Cooldown => "cooldown",
            GateKind::Hold => "hold",
            GateKind::Backoff => "backoff",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "cooldown" => GateKind::Cooldown,
            "hold" => GateKind::Hold,
            "backoff" => GateKind::Backoff,
            _ => return None,
        })
    }
}

/// A gate closed until `until_ms`: every instance answers `error` instead of asking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gate {
    /// What kind of wait.
    pub kind: GateKind,
    /// No token request before this instant (ms since the epoch).
    pub until_ms: u64,
    /// How many in a row (holds and backoffs grow with it).
    pub repeats: u32,
    /// The error that closed it (its report, without the message: no secret, no body).
    pub error: Error,
}

/// The fleet state under one cache key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetState {
    /// When each token request in the budget window was sent, oldest first.
    pub sent: Vec<u64>,
    /// The lifetime of the last token granted (sizes the budget).
    pub lifetime_ms: Option<u64>,
    /// A closed gate, if any.
    pub gate: Option<Gate>,
    /// The quotas the token endpoint declared, still in force.
    pub declared: Vec<Declared>,
}

// Written typed (integers and strings: no float formatter in the wasm), read field by field.
#[derive(Serialize)]
struct Stored<'a> {
    v: u64,
    sent: &'a [u64],
    #[serde(skip_serializing_if = "Option::is_none")]
    lifetime_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gate: Option<StoredGate>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    quota: Vec<StoredQuota<'a>>,
}

#[derive(Serialize)]
struct StoredQuota<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u64>,
    remaining: u64,
    reset_ms: u64,
    seen_ms: u64,
}

#[derive(Serialize)]
struct StoredGate {
    kind: &'static str,
    until_ms: u64,
    repeats: u32,
    error: StoredError,
}

#[derive(Serialize)]
struct StoredError {
    code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_ms: Option<u64>,
}

/// The most timestamps kept: more than any budget allows in one window.
const MAX_SENT: usize = 4_096;

impl FleetState {
    /// The stored (plain) form; sealed before it is written.
    pub fn encode(&self) -> String {
        let gate = self.gate.as_ref().map(|g| {
            let r = g.error.report();
            StoredGate {
                kind: g.kind.as_str(),
                until_ms: g.until_ms,
                repeats: g.repeats,
                error: StoredError {
                    code: r.code,
                    status: r.status,
                    error: r.error,
                    description: r.description,
                    retry_after: r.retry_after,
                    host: r.host,
                    reason: r.reason,
                    timeout_ms: r.timeout_ms,
                },
            }
        });
        let stored = Stored {
            v: FLEET_SCHEMA,
            sent: &self.sent,
            lifetime_ms: self.lifetime_ms,
            gate,
            quota: self
                .declared
                .iter()
                .map(|d| StoredQuota {
                    name: &d.name,
                    limit: d.limit,
                    remaining: d.remaining,
                    reset_ms: d.reset_ms,
                    seen_ms: d.seen_ms,
                })
                .collect(),
        };
        // integers and strings only: cannot fail
        serde_json::to_string(&stored).unwrap_or_default()
    }

    /// Reads a stored value; anything malformed or of another schema is `None` (ignored).
    pub fn decode(value: &str) -> Option<Self> {
        let json: Value = serde_json::from_str(value).ok()?;
        let o = json.as_object()?;
        if o.get("v")?.as_u64()? != FLEET_SCHEMA {
            return None;
        }
        let mut sent = o
            .get("sent")?
            .as_array()?
            .iter()
            .map(Value::as_u64)
            .collect::<Option<Vec<u64>>>()?;
        // written sorted: a window out of order is not one of ours
        if !sent.is_sorted() {
            return None;
        }
        // the newest count: the oldest leave the windows first
        sent.drain(..sent.len().saturating_sub(MAX_SENT));
        let lifetime_ms = match o.get("lifetime_ms") {
            None => None,
            Some(v) => Some(v.as_u64()?),
        };
        let gate = match o.get("gate") {
            None => None,
            Some(g) => Some(decode_gate(g.as_object()?)?),
        };
        let declared = match o.get("quota") {
            None => Vec::new(),
            Some(q) => q
                .as_array()?
                .iter()
                .take(MAX_DECLARED)
                .map(decode_quota)
                .collect::<Option<Vec<_>>>()?,
        };
        Some(Self {
            sent,
            lifetime_ms,
            gate,
            declared,
        })
    }
}

fn decode_quota(q: &Value) -> Option<Declared> {
    let q = q.as_object()?;
    let name = q.get("name")?.as_str()?;
    Some(Declared {
        name: name.chars().take(64).collect(),
        limit: match q.get("limit") {
            None => None,
            Some(l) => Some(l.as_u64()?),
        },
        remaining: q.get("remaining")?.as_u64()?,
        reset_ms: q.get("reset_ms")?.as_u64()?,
        seen_ms: q.get("seen_ms")?.as_u64()?,
    })
}

fn decode_gate(g: &Map<String, Value>) -> Option<Gate> {
    let report = ErrorReport::read(g.get("error")?.as_object()?, "retry_after", "timeout_ms")?;
    Some(Gate {
        kind: GateKind::parse(g.get("kind")?.as_str()?)?,
        until_ms: g.get("until_ms")?.as_u64()?,
        repeats: u32::try_from(g.get("repeats")?.as_u64()?).ok()?,
        error: Error::try_from(report).ok()?,
    })
}

/// The union of two budget windows (each sorted), without duplicates: the same request seen
/// in memory and in the store counts once.
pub fn merge_sent(a: impl IntoIterator<Item = u64>, b: impl IntoIterator<Item = u64>) -> Vec<u64> {
    let mut all = merge_sorted(a, b);
    all.dedup();
    all
}

/// Two sorted sequences as one sorted `Vec`, duplicates kept (a linear merge: the windows are
/// sorted where they are made and where they are read, so nothing is sorted here).
pub fn merge_sorted(a: impl IntoIterator<Item = u64>, b: impl IntoIterator<Item = u64>) -> Vec<u64> {
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    let mut all = Vec::new();
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x <= y => a.next(),
            (Some(_), Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => return all,
        };
        all.extend(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ServerError;

    fn rate_limited() -> Error {
        Error::RateLimited(ServerError {
            status: 429,
            error: Some("slow_down".into()),
            description: Some("Too many".into()),
            retry_after: Some(30),
        })
    }

    #[test]
    fn round_trips_every_kind_of_gate() {
        let errors = [
            (GateKind::Cooldown, rate_limited()),
            (GateKind::Cooldown, Error::MintBudgetExhausted { retry_after: 12 }),
            (
                GateKind::Hold,
                Error::AccessDenied(ServerError {
                    status: 401,
                    error: Some("access_denied".into()),
                    description: Some("Unauthorized".into()),
                    retry_after: None,
                }),
            ),
            (
                GateKind::Backoff,
                Error::Timeout {
                    host: "h".into(),
                    after_ms: 10,
                },
            ),
            (
                GateKind::Hold,
                Error::InvalidResponse {
                    status: 200,
                    reason: "r".into(),
                },
            ),
        ];
        for (kind, error) in errors {
            let s = FleetState {
                sent: vec![1, 5, 9],
                lifetime_ms: Some(86_400_000),
                gate: Some(Gate {
                    kind,
                    until_ms: 77,
                    repeats: 2,
                    error,
                }),
                declared: vec![
                    Declared {
                        name: "auth0-client:per_hour".into(),
                        limit: Some(3),
                        remaining: 1,
                        reset_ms: 3_600_000,
                        seen_ms: 5,
                    },
                    Declared {
                        name: "okta".into(),
                        limit: None,
                        remaining: 0,
                        reset_ms: 60_000,
                        seen_ms: 9,
                    },
                ],
            };
            assert_eq!(FleetState::decode(&s.encode()), Some(s.clone()), "{s:?}");
        }
        let empty = FleetState::default();
        assert_eq!(FleetState::decode(&empty.encode()), Some(empty));
    }

    #[test]
    fn malformed_or_foreign_states_are_ignored() {
        for v in [
            "",
            "{}",
            r#"{"v":2,"sent":[]}"#,
            r#"{"v":1}"#,
            r#"{"v":1,"sent":["x"]}"#,
            r#"{"v":1,"sent":[],"gate":{"kind":"nap","until_ms":1,"repeats":1,"error":{"code":"timeout","host":"h","timeout_ms":1}}}"#,
            r#"{"v":1,"sent":[],"gate":{"kind":"hold","until_ms":1,"repeats":1,"error":{"code":"no_such_code"}}}"#,
        ] {
            assert_eq!(FleetState::decode(v), None, "{v}");
        }
    }

    #[test]
    fn windows_merge_without_counting_a_request_twice() {
        assert_eq!(merge_sent([1, 3, 5], [3, 4]), vec![1, 3, 4, 5]);
        assert_eq!(merge_sorted([1, 3, 5], [0, 3, 4, 9]), vec![0, 1, 3, 3, 4, 5, 9]);
        assert_eq!(merge_sorted([], [2, 2]), vec![2, 2]);
    }
}
