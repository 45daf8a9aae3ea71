//! What goes between the machine and its driver: the actions it asks for, the store reads
//! reported back, the store operations outside a flight, and what a refusal did.

use std::sync::Arc;

use super::StoreError;
use crate::error::Error;
use crate::fleet::FleetState;
use crate::record::TokenRecord;

use super::{Call, Served};

/// What a store read found: the record, and (for writable stores) the fleet state.
#[derive(Clone, Debug, Default)]
pub struct StoreRead {
    /// The token record, if one opened.
    pub record: Option<TokenRecord>,
    /// The fleet's gate and budget window, if stored.
    pub fleet: Option<FleetState>,
    /// The fleet state could not be read (the record could): not the same as "none stored".
    pub fleet_error: Option<StoreError>,
}

impl From<Option<TokenRecord>> for StoreRead {
    fn from(record: Option<TokenRecord>) -> Self {
        Self {
            record,
            ..Self::default()
        }
    }
}

/// What [`Machine::refused`](crate::Machine::refused) did with a refused token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It was the token held: dropped, and never served again. Retry with a new one.
    Dropped,
    /// It was not the token held (already replaced, or unknown): remembered as refused.
    NotHeld,
    /// A refusal hold is on: the token is kept and nothing is minted; do not retry.
    Kept,
}

impl Refusal {
    /// `dropped`, `not_held` or `kept`, as the JS API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Dropped => "dropped",
            Refusal::NotHeld => "not_held",
            Refusal::Kept => "kept",
        }
    }
}

/// What the machine asks of its driver.
#[derive(Debug)]
pub enum Action {
    /// Hand this token to the caller; done.
    Serve(Served),
    /// Hand this token to the caller, and run `refresh` in the background (a new [`Call`] that
    /// owns the refresh flight: drive it with [`Machine::want`](crate::Machine::want)).
    ServeAndRefresh(Served, Call),
    /// Read the store (the record; with `fleet`, the fleet state too, at once), then report
    /// with [`Machine::stored`](crate::Machine::stored).
    ReadStore {
        /// Read the fleet state as well.
        fleet: bool,
    },
    /// Try to take the minting lock (`put_if_absent`, its value a fresh random owner id), then
    /// report with [`Machine::claimed`](crate::Machine::claimed). Only sent over a
    /// [`Shared::Locking`](crate::Shared::Locking) store.
    ClaimLock {
        /// How long the lock lives.
        ttl_ms: u64,
    },
    /// Ask the token source for a token, then report with [`Machine::minted`](crate::Machine::minted).
    Mint {
        /// The token being replaced, if any.
        replacing: Option<String>,
    },
    /// Write `record` (sealed, with its TTL in seconds) and `fleet` (sealed, with its TTL),
    /// then report with [`Machine::saved`](crate::Machine::saved) (one result per write).
    Save {
        /// The record and its TTL, when it is worth storing.
        record: Option<(Arc<TokenRecord>, u64)>,
        /// The fleet state and its TTL.
        fleet: Option<(FleetState, u64)>,
    },
    /// Release the minting lock this call claimed — fenced: only while the lock's value is
    /// still the owner id the claim wrote ([`Store::delete_if`](crate::Store::delete_if)) —
    /// then report with [`Machine::saved`](crate::Machine::saved).
    Unlock,
    /// Nothing to do before `t` (or before the flight this call waits on ends): then call
    /// [`Machine::want`](crate::Machine::want) again with the same call.
    WaitUntil(u64),
    /// The call failed.
    Fail(Error),
}

/// A store operation outside any flight, asked of the driver through
/// [`Machine::take_store_ops`](crate::Machine::take_store_ops); report failures with [`Machine::store_failed`](crate::Machine::store_failed). Only sent
/// to a store that writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreOp {
    /// Delete the record (the user invalidated the token).
    Delete,
    /// Delete the record only while it holds `token` (compare-and-delete: a token another
    /// instance already replaced survives).
    DeleteIf {
        /// The refused access token.
        token: String,
    },
}
