//! A call: one caller's request as it goes through the machine — what it wants, whether it
//! owns the flight, waits on it or has seen it land, and whether it holds the minting lock.

use super::lock::Lock;

/// What a caller wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Want {
    /// Any usable token.
    Usable,
    /// A token other than this one, which the caller holds and considers stale or refused (a
    /// minting authority's callers ask this way). Unless a newer token exists, one renewal is
    /// tried; if it fails while the held token is usable, the held token is served again.
    Replacing(String),
}

/// What a caller is doing with respect to the flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Not tied to a flight.
    Free,
    /// Runs flight `id`'s I/O.
    Owns(u64),
    /// Waits for flight `id` to end.
    Joined(u64),
    /// Its flight ended (`None`: it was declared dead before its answer came): serve what it
    /// left (or its error), never start another.
    Landed(Option<u64>),
}

/// One caller's request, threaded through the events of the machine.
#[derive(Clone, Debug)]
pub struct Call {
    pub(crate) want: Want,
    pub(crate) role: Role,
    /// A `Replacing` call tries one renewal at most.
    pub(crate) renewed: bool,
    pub(crate) lock: Lock,
}

impl Call {
    /// A call for `want`.
    pub fn new(want: Want) -> Self {
        Self {
            want,
            role: Role::Free,
            renewed: false,
            lock: Lock::No,
        }
    }
}
