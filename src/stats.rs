//! Counters of what the lifecycle machine did, for `stats()` and the Worker's health output.

use serde::Serialize;

/// What one client instance has done since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Tokens obtained from the token endpoint.
    pub mints: u64,
    /// Calls answered from this instance's memory.
    pub memory_hits: u64,
    /// Calls answered from the shared store (KV).
    pub kv_hits: u64,
    /// Store operations that failed (and were survived).
    pub kv_errors: u64,
    /// Stored values that did not open (forged, tampered, another secret or version): misses.
    pub kv_rejected: u64,
    /// Token requests that failed.
    pub failures: u64,
    /// Background refreshes started because the token was stale.
    pub refreshes: u64,
    /// Calls that joined a token request already under way instead of starting one.
    pub coalesced: u64,
    /// Times the mint budget refused a token request (each starts a cooldown until the budget
    /// allows one again; the edges log it).
    pub budget_refusals: u64,
}
