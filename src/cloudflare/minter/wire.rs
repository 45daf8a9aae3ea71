//! The minter's small wire: what an isolate asks of its tenant's object, as one JSON body
//! (`{ tenant, key, ask, … }`) to one URL.

use serde::Serialize;

/// Where isolates send their asks (the object's stub ignores the host).
pub(super) const ORIGIN: &str = "https://token-minter.internal/";

/// What an isolate asks of the minter: the object's whole wire, one JSON body to one URL.
#[derive(Serialize, Debug, PartialEq, Eq)]
#[serde(tag = "ask", rename_all = "snake_case")]
pub(super) enum MinterRequest {
    /// A token; one other than `replacing` when the isolate holds that one and finds it stale
    /// or refused.
    Token { replacing: Option<String> },
    /// Drop `token` if it is still the object's (compare-and-delete, KV too).
    Invalidate { token: String },
    /// The operator's lever: drop whatever token the object holds (memory, storage, KV) and
    /// its holds; the budget and the vendor's cooldowns stay.
    Drop,
    /// The cron: make sure a token exists, and refresh it now if it is stale.
    Refresh,
    /// The mint ledger, the counters and the budget, for `/healthz`.
    Ledger,
}

/// One ask on the wire, with whom it is for: the tenant (`None`: the single tenant) and the
/// cache key the isolate derived the object's id from. An object serves the one tenant its first
/// ask named, and refuses any other — a token never crosses to another tenant's caller, even
/// through a bug in the naming of objects.
#[derive(Serialize)]
pub(super) struct Envelope<'a> {
    pub(super) tenant: Option<&'a str>,
    pub(super) key: &'a str,
    #[serde(flatten)]
    pub(super) ask: &'a MinterRequest,
}

impl MinterRequest {
    /// Read field by field (typed deserialisation would bring a float formatter into the wasm):
    /// the ask, its tenant and its key.
    pub(super) fn decode(json: &str) -> Option<(Self, Option<String>, String)> {
        let v: serde_json::Value = serde_json::from_str(json).ok()?;
        let text = |name: &str| v.get(name).and_then(serde_json::Value::as_str).map(str::to_owned);
        let (tenant, key) = (text("tenant"), text("key")?);
        let ask = match v.get("ask")?.as_str()? {
            "token" => Self::Token {
                replacing: text("replacing"),
            },
            "invalidate" => Self::Invalidate {
                token: text("token")?,
            },
            "refresh" => Self::Refresh,
            "drop" => Self::Drop,
            "ledger" => Self::Ledger,
            _ => return None,
        };
        Some((ask, tenant, key))
    }
}
