//! Many credential sets in one process: a [`ClientSet`] keeps one [`Client`] per configuration
//! identity (its cache key), built on first use, at most `max` at once, all sharing one store,
//! one HTTP client, one policy and one observer. Two configurations that differ in any field
//! that changes the token are two clients that share no record, lock, flight, budget or
//! cooldown.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use super::{Client, NativeStore, ReqwestTransport};
use crate::{Config, Error, Event, Policy};

/// One observer for every client of a set.
type SharedObserver = Arc<dyn Fn(&Event) + Send + Sync>;

/// The registry. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct ClientSet {
    inner: Arc<Inner>,
}

struct Inner {
    store: Option<NativeStore>,
    policy: Policy,
    transport: ReqwestTransport,
    observer: Option<SharedObserver>,
    max: usize,
    named: Mutex<HashMap<String, Config>>,
    /// Cache key → client, and the keys from least to most recently used.
    live: Mutex<(HashMap<String, Client>, VecDeque<String>)>,
}

/// How a [`ClientSet`] is made.
pub struct ClientSetBuilder {
    store: Option<NativeStore>,
    policy: Policy,
    observer: Option<SharedObserver>,
    max: usize,
}

impl ClientSetBuilder {
    /// Every client shares tokens through `store`.
    #[must_use]
    pub fn store(mut self, store: impl Into<NativeStore>) -> Self {
        self.store = Some(store.into());
        self
    }
    /// Every client's lifecycle policy.
    #[must_use]
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }
    /// Every client's events (each carries its client's label).
    #[must_use]
    pub fn observer(mut self, observer: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }
    /// Most clients kept at once (default 100); past it the least recently used is let go.
    #[must_use]
    pub fn max(mut self, max: usize) -> Self {
        self.max = max.max(1);
        self
    }
    /// The set. Fails when no HTTP client can be made.
    pub fn build(self) -> Result<ClientSet, Error> {
        Ok(ClientSet {
            inner: Arc::new(Inner {
                store: self.store,
                policy: self.policy,
                transport: ReqwestTransport::new()?,
                observer: self.observer,
                max: self.max,
                named: Mutex::default(),
                live: Mutex::default(),
            }),
        })
    }
}

impl ClientSet {
    /// A builder: memory only, the default policy, at most 100 clients.
    pub fn builder() -> ClientSetBuilder {
        ClientSetBuilder {
            store: None,
            policy: Policy::default(),
            observer: None,
            max: 100,
        }
    }

    /// Names a credential set, for [`Self::named`]. A second definition of `name` is refused.
    pub fn define(&self, name: &str, config: Config) -> Result<(), Error> {
        crate::config::check_label(name)?;
        let mut named = self.inner.named.lock().unwrap_or_else(PoisonError::into_inner);
        if named.contains_key(name) {
            return Err(Error::config(
                crate::field::LABEL,
                "names a client that is defined already",
            ));
        }
        named.insert(name.to_owned(), config);
        Ok(())
    }

    /// The client named `name` (see [`Self::define`]).
    pub fn named(&self, name: &str) -> Result<Client, Error> {
        let config = self
            .inner
            .named
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
            .ok_or_else(|| Error::argument("no client is defined with this name"))?;
        self.get(&config)
    }

    /// The client for `config`, keyed by its identity: the same client for the same identity,
    /// however often asked.
    pub fn get(&self, config: &Config) -> Result<Client, Error> {
        let key = config.cache_key();
        let mut live = self.inner.live.lock().unwrap_or_else(PoisonError::into_inner);
        let (clients, order) = &mut *live;
        if let Some(client) = clients.get(key).cloned() {
            order.retain(|k| k != key);
            order.push_back(key.to_owned());
            return Ok(client);
        }
        let mut builder = Client::builder(config.clone())
            .policy(self.inner.policy.clone())
            .transport(self.inner.transport.clone());
        if let Some(store) = &self.inner.store {
            builder = builder.store(store.clone());
        }
        if let Some(observer) = &self.inner.observer {
            let observer = Arc::clone(observer);
            builder = builder.observer(move |e| observer(e));
        }
        let client = builder.build()?;
        if clients.len() >= self.inner.max
            && let Some(oldest) = order.pop_front()
        {
            clients.remove(&oldest);
        }
        clients.insert(key.to_owned(), client.clone());
        order.push_back(key.to_owned());
        Ok(client)
    }

    /// Clients built and kept now.
    pub fn len(&self) -> usize {
        self.inner
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .len()
    }

    /// Whether no client is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
