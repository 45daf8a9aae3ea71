//! Fakes for the core's seams: a clock tests move by hand, a transport that checks the exact
//! request and answers from a script, and an expiring in-memory store that can be made to fail.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use autopay_auth::*;
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;

pub const SECRET: &str = "s3cr3t-client-secret-value";
pub const START_MS: u64 = 1_700_000_000_000;

#[derive(Clone, Default)]
pub struct FakeClock(pub Rc<Cell<u64>>);

impl FakeClock {
    pub fn at(ms: u64) -> Self {
        Self(Rc::new(Cell::new(ms)))
    }
    pub fn advance(&self, ms: u64) {
        self.0.set(self.0.get() + ms);
    }
    pub fn set(&self, ms: u64) {
        self.0.set(ms);
    }
    pub fn now(&self) -> u64 {
        self.0.get()
    }
}

impl Clock for FakeClock {
    fn now_ms(&self) -> u64 {
        self.0.get()
    }
}

/// Yields once, so that other tasks run while a request is "in flight".
pub struct YieldOnce(bool);
impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// A latch: futures waiting on it stay pending until `open`.
#[derive(Clone, Default)]
pub struct Gate {
    closed: Rc<Cell<bool>>,
    wakers: Rc<RefCell<Vec<std::task::Waker>>>,
}

impl Gate {
    pub fn close(&self) {
        self.closed.set(true);
    }
    pub fn open(&self) {
        self.closed.set(false);
        for w in self.wakers.borrow_mut().drain(..) {
            w.wake();
        }
    }
    pub fn wait(&self) -> impl Future<Output = ()> + 'static {
        let g = self.clone();
        std::future::poll_fn(move |cx| {
            if g.closed.get() {
                g.wakers.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
    }
}

type Answer = Result<TokenResponse, Error>;

/// Answers token requests from a script; each answer takes `latency_ms` of fake time.
#[derive(Clone)]
pub struct FakeTransport {
    pub calls: Rc<Cell<u32>>,
    script: Rc<RefCell<Vec<Answer>>>,
    pub expires_in: Rc<Cell<u64>>,
    pub latency_ms: Rc<Cell<u64>>,
    /// Token answers wait for this gate (open unless a test closes it).
    pub gate: Gate,
    clock: FakeClock,
}

pub fn ok_body(token: &str, expires_in: u64) -> String {
    format!(
        r#"{{"access_token":"{token}","scope":"customer_club","expires_in":{expires_in},"token_type":"Bearer"}}"#
    )
}

pub fn status(status: u16, body: &str) -> Answer {
    Ok(TokenResponse {
        status,
        retry_after: None,
        body: body.to_owned(),
    })
}

impl FakeTransport {
    pub fn new(clock: &FakeClock) -> Self {
        Self {
            calls: Rc::default(),
            script: Rc::default(),
            expires_in: Rc::new(Cell::new(86_400)),
            latency_ms: Rc::new(Cell::new(50)),
            gate: Gate::default(),
            clock: clock.clone(),
        }
    }
    /// Queue answers; when the queue is empty every call gets a fresh token `tok-N`.
    pub fn then(&self, answer: Answer) -> &Self {
        self.script.borrow_mut().push(answer);
        self
    }
    pub fn calls(&self) -> u32 {
        self.calls.get()
    }
}

impl Transport for FakeTransport {
    fn send(&self, request: TokenRequest, timeout_ms: u64) -> impl Future<Output = Answer> {
        assert_eq!(request.url, "https://api-auth.autopay.io/oauth/token");
        let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"client_id": "client-1", "client_secret": SECRET,
                "audience": "https://api.autopay.io", "grant_type": "client_credentials"})
        );
        assert!(timeout_ms > 0);
        self.calls.set(self.calls.get() + 1);
        let n = self.calls.get();
        let scripted = {
            let mut s = self.script.borrow_mut();
            (!s.is_empty()).then(|| s.remove(0))
        };
        let answer =
            scripted.unwrap_or_else(|| status(200, &ok_body(&format!("tok-{n}"), self.expires_in.get())));
        let clock = self.clock.clone();
        let latency = self.latency_ms.get();
        let gate = self.gate.wait();
        async move {
            YieldOnce(false).await;
            gate.await;
            clock.advance(latency);
            answer
        }
    }
}

/// An expiring map with the Workers KV rules (TTL ≥ 60), shared by clones, that can fail.
#[derive(Clone)]
pub struct FakeStore {
    pub map: Rc<RefCell<HashMap<String, (String, u64)>>>,
    pub puts: Rc<RefCell<Vec<(String, String, u64)>>>,
    pub fail: Rc<Cell<bool>>,
    clock: FakeClock,
}

impl FakeStore {
    pub fn new(clock: &FakeClock) -> Self {
        Self {
            map: Rc::default(),
            puts: Rc::default(),
            fail: Rc::default(),
            clock: clock.clone(),
        }
    }
    pub fn raw_put(&self, key: &str, value: &str) {
        self.map.borrow_mut().insert(key.into(), (value.into(), u64::MAX));
    }
    pub fn value(&self, key: &str) -> Option<String> {
        self.map.borrow().get(key).map(|(v, _)| v.clone())
    }
}

impl Store for FakeStore {
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<String>, StoreError>> {
        let r = if self.fail.get() {
            Err(StoreError("kv down".into()))
        } else {
            let now = self.clock.now();
            Ok(self
                .map
                .borrow()
                .get(key)
                .filter(|(_, exp)| *exp > now)
                .map(|(v, _)| v.clone()))
        };
        async move {
            YieldOnce(false).await;
            r
        }
    }
    fn put(&self, key: &str, value: &str, ttl_secs: u64) -> impl Future<Output = Result<(), StoreError>> {
        assert!(ttl_secs >= 60, "KV refuses a TTL below 60");
        let r = if self.fail.get() {
            Err(StoreError("kv down".into()))
        } else {
            let exp = self.clock.now() + ttl_secs * 1000;
            self.map.borrow_mut().insert(key.into(), (value.into(), exp));
            self.puts.borrow_mut().push((key.into(), value.into(), ttl_secs));
            Ok(())
        };
        async move { r }
    }
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> {
        let r = if self.fail.get() {
            Err(StoreError("kv down".into()))
        } else {
            self.map.borrow_mut().remove(key);
            Ok(())
        };
        async move { r }
    }
}

pub type Manager = TokenManager<Endpoint<FakeTransport, FakeClock>, FakeStore, FakeClock>;

pub fn config() -> Config {
    Config::new(
        DEFAULT_TOKEN_URL,
        "client-1",
        ClientSecret::new(SECRET),
        DEFAULT_AUDIENCE,
    )
    .unwrap()
}

pub struct World {
    pub clock: FakeClock,
    pub transport: FakeTransport,
    pub store: FakeStore,
}

impl World {
    pub fn new() -> Self {
        let clock = FakeClock::at(START_MS);
        Self {
            transport: FakeTransport::new(&clock),
            store: FakeStore::new(&clock),
            clock,
        }
    }
    pub fn manager(&self, with_store: bool) -> Manager {
        let config = config();
        TokenManager::new(
            config.cache_key().to_owned(),
            Policy::default(),
            0.0,
            Endpoint::new(config, self.transport.clone(), self.clock.clone()),
            with_store.then(|| self.store.clone()),
            self.clock.clone(),
        )
        .unwrap()
    }
}

/// Runs one `get`, and its background refresh to the end, as an edge would.
pub fn get<T: TokenSource + 'static, S: Store + 'static, C: Clock + 'static>(
    m: &TokenManager<T, S, C>,
) -> Result<Served, Error> {
    let mut pool = LocalPool::new();
    let lookup = pool.run_until(m.get())?;
    if let Some(refresh) = lookup.refresh {
        pool.spawner().spawn_local(refresh).unwrap();
        pool.run_until_stalled();
    }
    Ok(lookup.served)
}

/// Runs one `get` and returns the lookup without running its refresh.
pub fn lookup(m: &Manager) -> Result<Lookup, Error> {
    LocalPool::new().run_until(m.get())
}

pub fn block_on<F: Future>(f: F) -> F::Output {
    LocalPool::new().run_until(f)
}
