//! What the machine knows of a store: what it can do ([`Shared`]) and how a call to it fails
//! ([`StoreError`]). The store seams ([`crate::Store`]) are built on these; the machine never
//! depends on a seam.

/// What the store behind a machine can do — the machine's input, which decides the actions it
/// is sent: none goes to a store that cannot take it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shared {
    /// No shared store: memory only.
    Memory,
    /// Read, never written: a cache in front of a minting authority that writes it.
    ReadOnly,
    /// Read and written (records, the fleet state); no lock (Workers KV, a Durable Object's
    /// own storage).
    ReadWrite,
    /// Read, written, and an atomic `put_if_absent` for the minting lock (Redis, Deno KV,
    /// DynamoDB): processes sharing it mint once between them.
    Locking,
}

impl Shared {
    /// Whether records and the fleet state are written to it.
    pub fn writes(self) -> bool {
        matches!(self, Shared::ReadWrite | Shared::Locking)
    }
}

impl From<bool> for Shared {
    /// `true`: a store that locks; `false`: none.
    fn from(has_store: bool) -> Self {
        if has_store {
            Shared::Locking
        } else {
            Shared::Memory
        }
    }
}

/// A store failure: counted and survived, never shown to the caller as a token error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError(pub String);

impl StoreError {
    /// A value that could not be sealed (no randomness or no crypto here): nothing was written.
    pub fn unsealed() -> Self {
        StoreError("the value could not be sealed, so it was not written".into())
    }
}
