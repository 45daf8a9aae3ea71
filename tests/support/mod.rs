//! Fakes for the core's seams: a clock tests move by hand, a transport that checks the exact
//! request and answers from a script, and an expiring in-memory store that can be made to fail.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use autopay_auth::*;
use futures::executor::LocalPool;

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

thread_local! {
    /// Sleepers of this test's simulated clocks: (id, deadline, clock, waker).
    static TIMERS: RefCell<Vec<(u64, u64, FakeClock, Waker)>> = const { RefCell::new(Vec::new()) };
    static NEXT_TIMER: Cell<u64> = const { Cell::new(0) };
}

/// A sleep on the simulated clock: pending until the clock reaches the deadline. Dropping it
/// (a waiter woken another way) cancels its timer.
pub struct Sleep {
    id: u64,
    clock: FakeClock,
    deadline: u64,
}

impl Future for Sleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.clock.now() >= self.deadline {
            return Poll::Ready(());
        }
        TIMERS.with(|t| {
            let mut timers = t.borrow_mut();
            timers.retain(|(id, ..)| *id != self.id);
            timers.push((self.id, self.deadline, self.clock.clone(), cx.waker().clone()));
        });
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        let _ = TIMERS.try_with(|t| t.borrow_mut().retain(|(id, ..)| *id != self.id));
    }
}

/// When nothing else can run: moves the clock to the earliest sleeper's deadline and wakes every
/// sleeper due by then (quinn's "jump to the next timeout"). False when nobody sleeps.
pub fn fire_next_timer() -> bool {
    let due = TIMERS.with(|t| {
        let mut timers = t.borrow_mut();
        let next = timers.iter().map(|(_, d, _, _)| *d).min()?;
        let (due, rest): (Vec<_>, Vec<_>) = timers.drain(..).partition(|(_, d, _, _)| *d <= next);
        *timers = rest;
        Some(due)
    });
    let Some(due) = due else { return false };
    for (_, deadline, clock, waker) in due {
        clock.set(clock.now().max(deadline));
        waker.wake();
    }
    true
}

/// Runs every task on `pool` to the end, jumping the simulated clock from timer to timer
/// whenever all of them wait.
pub fn run_all(pool: &mut LocalPool) {
    loop {
        pool.run_until_stalled();
        if !fire_next_timer() {
            break;
        }
    }
}

/// Runs `f` to completion on `pool`, with the simulated clock jumping ahead whenever every
/// task is waiting on a timer.
pub fn drive<F: Future>(pool: &mut LocalPool, f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut idle = 0;
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        pool.run_until_stalled();
        // the driven future yields on its own (fake I/O): poll it again; once it has been
        // pending for a while with nothing else to run, only a timer can help
        idle += 1;
        if idle > 16 {
            assert!(
                fire_next_timer(),
                "stalled: every task waits, and no timer is set"
            );
            idle = 0;
        }
    }
}

impl Clock for FakeClock {
    fn now_ms(&self) -> u64 {
        self.0.get()
    }
    fn sleep(&self, ms: u64) -> impl Future<Output = ()> {
        Sleep {
            id: NEXT_TIMER.with(|n| {
                n.set(n.get() + 1);
                n.get()
            }),
            clock: self.clone(),
            deadline: self.now() + ms,
        }
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
        headers: Vec::new(),
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
    /// Every call never answers (a store whose promise never settles).
    pub hang: Rc<Cell<bool>>,
    /// Whether `put_if_absent` is supported (as by Redis or Deno KV).
    pub atomic: Rc<Cell<bool>>,
    /// The shortest TTL it takes: Workers KV's 60 s unless set (Redis and the others take 1 s).
    pub min_ttl: Rc<Cell<u64>>,
    /// Runs once, right after the next `get` has read its answer: another instance's write
    /// landing between a read and what the reader does next.
    pub after_get: Rc<RefCell<Option<AfterGet>>>,
    /// Reads of keys that end with this fail (one key of two unreadable).
    pub fail_reads_of: Rc<RefCell<Option<String>>>,
    clock: FakeClock,
}

/// What [`FakeStore::after_get`] does to the store's map.
pub type AfterGet = Box<dyn FnOnce(&mut HashMap<String, (String, u64)>)>;

impl FakeStore {
    pub fn new(clock: &FakeClock) -> Self {
        Self {
            map: Rc::default(),
            puts: Rc::default(),
            fail: Rc::default(),
            hang: Rc::default(),
            atomic: Rc::default(),
            min_ttl: Rc::new(Cell::new(60)),
            after_get: Rc::default(),
            fail_reads_of: Rc::default(),
            clock: clock.clone(),
        }
    }
    pub fn raw_put(&self, key: &str, value: &str) {
        self.map.borrow_mut().insert(key.into(), (value.into(), u64::MAX));
    }
    /// The keys written so far, in order (the record's, the fleet state's, …).
    pub fn put_keys(&self) -> Vec<String> {
        self.puts.borrow().iter().map(|(k, ..)| k.clone()).collect()
    }
    pub fn value(&self, key: &str) -> Option<String> {
        self.map.borrow().get(key).map(|(v, _)| v.clone())
    }
}

impl Store for FakeStore {
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<String>, StoreError>> {
        let unreadable = self
            .fail_reads_of
            .borrow()
            .as_ref()
            .is_some_and(|s| key.ends_with(s.as_str()));
        let r = if self.fail.get() || unreadable {
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
        if let Some(then) = self.after_get.borrow_mut().take() {
            then(&mut self.map.borrow_mut());
        }
        let hang = self.hang.get();
        async move {
            YieldOnce(false).await;
            if hang {
                std::future::pending::<()>().await;
            }
            r
        }
    }
    fn min_ttl_secs(&self) -> u64 {
        self.min_ttl.get()
    }
    fn shared(&self) -> Shared {
        if self.atomic.get() {
            Shared::Locking
        } else {
            Shared::ReadWrite
        }
    }
    fn put(&self, key: &str, value: &str, ttl_secs: u64) -> impl Future<Output = Result<(), StoreError>> {
        assert!(
            ttl_secs >= self.min_ttl.get(),
            "the store refuses a TTL below its shortest"
        );
        let r = if self.fail.get() {
            Err(StoreError("kv down".into()))
        } else {
            let exp = self.clock.now() + ttl_secs * 1000;
            self.map.borrow_mut().insert(key.into(), (value.into(), exp));
            self.puts.borrow_mut().push((key.into(), value.into(), ttl_secs));
            Ok(())
        };
        let hang = self.hang.get();
        async move {
            if hang {
                std::future::pending::<()>().await;
            }
            r
        }
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
    fn put_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl_ms: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> {
        assert!(self.atomic.get(), "a store that cannot lock is never asked to");
        let r = if self.fail.get() {
            Err(StoreError("kv down".into()))
        } else {
            let now = self.clock.now();
            let mut map = self.map.borrow_mut();
            let taken = map.get(key).is_some_and(|(_, exp)| *exp > now);
            if !taken {
                map.insert(key.into(), (value.into(), now + ttl_ms));
            }
            Ok(!taken)
        };
        async move { r }
    }
    fn delete_if(&self, key: &str, expected: &str) -> impl Future<Output = Result<bool, StoreError>> {
        let r = if self.fail.get() {
            Err(StoreError("kv down".into()))
        } else {
            let now = self.clock.now();
            let mut map = self.map.borrow_mut();
            let held = map.get(key).is_some_and(|(v, exp)| v == expected && *exp > now);
            if held {
                map.remove(key);
            }
            Ok(held)
        };
        async move { r }
    }
}

/// The parts a test manager runs over.
pub type TestHost = Parts<Endpoint<FakeTransport, FakeClock>, FakeStore, FakeClock>;
pub type Manager = TokenManager<TestHost>;

pub fn config() -> Config {
    Config::new(
        DEFAULT_TOKEN_URL,
        "client-1",
        ClientSecret::new(SECRET),
        DEFAULT_AUDIENCE,
    )
    .unwrap()
}

/// The sealer of [`config`]'s records, to read (or forge) what the store holds.
/// A bearer record named `name`, issued at `issued_ms`, living `life_s` seconds: the machine
/// tables' tokens.
pub fn record(name: &str, issued_ms: u64, life_s: u64) -> TokenRecord {
    TokenRecord {
        access_token: name.into(),
        token_type: "Bearer".into(),
        scope: None,
        issued_at_ms: issued_ms,
        expires_at_ms: issued_ms + life_s * 1000,
    }
}

pub fn sealer() -> Sealer {
    let c = config();
    Sealer::new(c.sealing_secret(), c.cache_key())
}

/// The record in a stored value.
pub fn open(value: &str) -> TokenRecord {
    sealer().open(value).expect("a sealed record that opens")
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
        let source = Endpoint::new(config.clone(), self.transport.clone(), self.clock.clone());
        let host = Parts::new(source, with_store.then(|| self.store.clone()), self.clock.clone());
        TokenManager::new(&config, Policy::default(), 0.0, host).unwrap()
    }
}

/// Runs one `get`, and its background refresh to the end, as an edge would.
pub fn get<H: Host>(m: &TokenManager<H>) -> Result<Served, Error> {
    let mut pool = LocalPool::new();
    let lookup = drive(&mut pool, m.get())?;
    if let Some(refresh) = lookup.refresh {
        drive(&mut pool, refresh.run());
    }
    Ok(lookup.served)
}

/// Runs one `get` and returns the lookup without running its refresh.
pub fn lookup(m: &Manager) -> Result<Lookup<TestHost>, Error> {
    drive(&mut LocalPool::new(), m.get())
}

pub fn block_on<F: Future>(f: F) -> F::Output {
    drive(&mut LocalPool::new(), f)
}

/// Spawns `calls` concurrent `get`s on each manager; returns where their results will land.
pub fn spawn_gets(
    pool: &LocalPool,
    managers: &[Manager],
    calls: usize,
) -> Rc<RefCell<Vec<Result<Served, Error>>>> {
    use futures::task::LocalSpawnExt;
    let out = Rc::new(RefCell::new(Vec::new()));
    for m in managers {
        for _ in 0..calls {
            let (m, out) = (m.clone(), Rc::clone(&out));
            pool.spawner()
                .spawn_local(async move {
                    let r = m.get().await.map(|l| l.served);
                    out.borrow_mut().push(r);
                })
                .unwrap();
        }
    }
    out
}

/// A child process (a server a test started) killed when dropped.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
