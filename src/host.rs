//! What a driver runs over: the host's parts — its token source, store, clock, waker, sealer
//! and observer — passed in as values. [`TokenManager`](crate::TokenManager) is one driver for
//! every host: over single-threaded parts (the JS hosts, the Durable Object) its futures are
//! local; over `Send + Sync` parts (the native client) the manager is `Send + Sync` and its
//! futures are `Send`, so any task on any thread may call it.

use std::marker::PhantomData;

use crate::events::Event;
use crate::seal::Sealer;
use crate::seams::{Clock, Notify, Seal, Store, TokenSource, Wakers};

/// Whoever is told what happened (logs, metrics, a ledger). Called synchronously; it must not
/// call back into the manager.
pub trait Observe {
    /// One event.
    fn observe(&self, event: &Event);
}

/// The observer of a host that listens to nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Quiet;

impl Observe for Quiet {
    fn observe(&self, _event: &Event) {}
}

impl<F: Fn(&Event)> Observe for F {
    fn observe(&self, event: &Event) {
        self(event)
    }
}

/// The parts a [`TokenManager`](crate::TokenManager) drives.
pub trait Host {
    /// Where tokens come from.
    type Source: TokenSource;
    /// The shared store (see [`Host::store`]).
    type Store: Store;
    /// Time, and waiting.
    type Clock: Clock;
    /// How this host's callers wait for the flight under way.
    type Notify: Notify;
    /// How records are sealed for the store; keyed by the driver from the config's secret.
    type Seal: Seal;
    /// Told every event.
    type Observer: Observe;
    /// The token source.
    fn source(&self) -> &Self::Source;
    /// The shared store, if there is one.
    fn store(&self) -> Option<&Self::Store>;
    /// The clock.
    fn clock(&self) -> &Self::Clock;
    /// The waker.
    fn notify(&self) -> &Self::Notify;
    /// The observer.
    fn observer(&self) -> &Self::Observer;
}

/// A [`Host`] of values: built with [`Parts::new`], then `with_*` for what differs from the
/// defaults (Rust wakers, the RustCrypto sealer, no observer).
pub struct Parts<T, S, C, N = Wakers, K = Sealer, O = Quiet> {
    source: T,
    store: Option<S>,
    clock: C,
    notify: N,
    observer: O,
    seal: PhantomData<fn() -> K>,
}

impl<T, S, C> Parts<T, S, C> {
    /// `source` and `clock`, with `store` (if any) shared with the rest of the fleet.
    pub fn new(source: T, store: Option<S>, clock: C) -> Self {
        Self {
            source,
            store,
            clock,
            notify: Wakers::default(),
            observer: Quiet,
            seal: PhantomData,
        }
    }
}

impl<T, S, C, N, K, O> Parts<T, S, C, N, K, O> {
    /// The same parts, waking waiters with `notify`.
    pub fn with_notify<M: Notify>(self, notify: M) -> Parts<T, S, C, M, K, O> {
        Parts {
            source: self.source,
            store: self.store,
            clock: self.clock,
            notify,
            observer: self.observer,
            seal: PhantomData,
        }
    }

    /// The same parts, sealing with `L`.
    pub fn with_seal<L: Seal>(self) -> Parts<T, S, C, N, L, O> {
        Parts {
            source: self.source,
            store: self.store,
            clock: self.clock,
            notify: self.notify,
            observer: self.observer,
            seal: PhantomData,
        }
    }

    /// The same parts, telling `observer` every event.
    pub fn with_observer<P: Observe>(self, observer: P) -> Parts<T, S, C, N, K, P> {
        Parts {
            source: self.source,
            store: self.store,
            clock: self.clock,
            notify: self.notify,
            observer,
            seal: PhantomData,
        }
    }
}

impl<T, S, C, N, K, O> Host for Parts<T, S, C, N, K, O>
where
    T: TokenSource,
    S: Store,
    C: Clock,
    N: Notify,
    K: Seal,
    O: Observe,
{
    type Source = T;
    type Store = S;
    type Clock = C;
    type Notify = N;
    type Seal = K;
    type Observer = O;

    fn source(&self) -> &T {
        &self.source
    }
    fn store(&self) -> Option<&S> {
        self.store.as_ref()
    }
    fn clock(&self) -> &C {
        &self.clock
    }
    fn notify(&self) -> &N {
        &self.notify
    }
    fn observer(&self) -> &O {
        &self.observer
    }
}
