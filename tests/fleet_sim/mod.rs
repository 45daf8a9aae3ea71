//! Deterministic simulation of a fleet running **the real client**: every instance is a real
//! [`TokenManager`] — the driver and the machine as they ship — over a simulated [`Host`]: a
//! virtual clock, a seeded single-threaded executor, a store and a token endpoint that answer
//! after a drawn delay, and the real sealing. Nothing of the driver is copied here; faults go in
//! through the parts the driver calls (FoundationDB's simulation testing, TigerBeetle's VOPR,
//! tokio's turmoil).
//!
//! - **Time** is virtual: the executor polls every task that can run, then jumps to the next
//!   timer. A run of 30 days takes seconds, and a seed gives the same run every time.
//! - **Instances** share no memory: each has its own manager, clock (which may jump forward),
//!   and tasks. One may crash (its tasks are dropped; it restarts cold) or be paused — as
//!   `SIGSTOP`, a frozen Lambda or a long GC pause would: none of its tasks runs, its timers and
//!   answers wait, and the world goes on; when it resumes, everything it waited for is late.
//! - **Configurations**: each process may hold several clients that differ in one field (their
//!   scope: tenants), each with its own callers, over the one store; they crash, pause and jump
//!   together. Tokens say which configuration's request minted them.
//! - **The store** is atomic (Redis, Deno KV, DynamoDB: `put_if_absent`, `delete_if`), eventually
//!   consistent (Workers KV: no lock, a read sees the newest write older than a drawn lag, every
//!   write kept inside the lag, one write per second per key, TTLs of at least 60 s), or absent.
//!   Each call takes a drawn delay and takes effect at the store half-way, whatever became of its
//!   caller; it may fail, or succeed after its caller timed out. The store may be down for a
//!   while.
//! - **The token endpoint** answers through the real `Endpoint` (request built, answer judged,
//!   expiry counted from the send): a token, a 503, or 429 with `Retry-After` during a storm.
//!
//! **Invariants**, checked at every token request and every serve; a violation panics with the
//! seed and the command that replays it:
//! - a token request over a store that locks is sent only by the holder of a live lock, and
//!   never while another instance holds a live lock it has not released ("never two live
//!   locks"), unless the sender declared the store unreachable (`storeOutage: 'mint'`);
//! - a record is deleted from the store only when it holds a revoked token;
//! - no caller is ever handed a token past its true expiry, or one minted for another
//!   configuration; no token request is sent for another configuration than its sender's;
//! - (at the end) at most one mint per half token lifetime outside a store outage and the
//!   tokens lost with a crashed or paused holder, for each configuration; every caller failure
//!   is counted by its code.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use autopay_auth::*;

/// What the fleet shares.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StoreKind {
    /// Linearisable, with an atomic set-if-absent and compare-and-delete (Redis, Deno KV, DynamoDB).
    Atomic,
    /// No lock; a read sees the newest write older than a drawn lag up to `lag_ms` (Workers KV).
    Eventual { lag_ms: u64 },
    /// No shared store.
    None,
}

impl StoreKind {
    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Atomic => "atomic (Redis, Deno KV, DynamoDB)",
            StoreKind::Eventual { .. } => "eventually consistent (Workers KV, no lock)",
            StoreKind::None => "no shared store",
        }
    }
}

/// One scenario: the fleet, its load, and the fault plan.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub instances: usize,
    /// Configurations each instance holds, over the one store (tenants: each differs from the
    /// others in its scope and label). Each has its own callers, lock, fleet state and token;
    /// every serve checks that the token was minted for the caller's own configuration.
    pub tenants: usize,
    pub duration_ms: u64,
    pub token_life_s: u64,
    pub store: StoreKind,
    /// Each store call's round trip, uniform in this range (ms).
    pub store_latency_ms: (u64, u64),
    /// Each token request's round trip, uniform in this range (ms).
    pub endpoint_latency_ms: (u64, u64),
    /// Mean gap between two requests to one instance (ms); exponential.
    pub request_gap_ms: u64,
    /// Requests each instance gets at the instant it starts (the cold burst).
    pub start_burst: u32,
    /// Mean time between crashes of one instance (ms); a crashed instance starts again, cold,
    /// within a minute.
    pub crash_every_ms: Option<u64>,
    /// Chance that a lock holder crashes right after it took the lock (mid-mint, as a rule).
    pub holder_dies: f64,
    /// Chance that a lock holder is paused (`SIGSTOP`) soon after it took the lock, for longer
    /// than the lock lives.
    pub holder_pauses: f64,
    /// Chance that any one store call fails…
    pub store_faults: f64,
    /// …or takes effect, but answers after its caller timed out.
    pub store_late: f64,
    /// Chance that sealing a value fails (the platform's crypto or randomness).
    pub seal_faults: f64,
    /// Chance that a token request is answered 503.
    pub endpoint_faults: f64,
    /// Chance that a timer fires late (by up to 2 s).
    pub late_wakeups: f64,
    /// Mean time between forward jumps of one instance's clock (up to 30 s), if clocks jump.
    pub clock_jump_every_ms: Option<u64>,
    /// Mean time between revocations of the newest token (every caller then gets a 401 for it
    /// and reports it refused), if tokens are revoked.
    pub revoke_every_ms: Option<u64>,
    /// The store is down (every call fails) from `.0` for `.1` ms.
    pub outage: Option<(u64, u64)>,
    /// The endpoint answers 429 with `Retry-After: .2` s from `.0` for `.1` ms.
    pub storms: Vec<(u64, u64, u64)>,
    /// The endpoint grants at most `.0` tokens per window of `.1` ms (fixed windows from the
    /// start), declares the quota in every answer as Auth0 does (`Auth0-Client-Quota-Limit`),
    /// and answers 429 past it.
    pub quota: Option<(u64, u64)>,
    /// Tokens are DPoP-bound and the endpoint requires its nonce, a new one every this many ms:
    /// a proof without the current nonce is answered `use_dpop_nonce` (400, with the nonce),
    /// which the real `Endpoint` answers with one more request — under the same lock.
    pub dpop_nonce_every_ms: Option<u64>,
    pub policy: Policy,
    pub seed: u64,
}

impl Scenario {
    /// Defaults: 100 instances, a day, 1 h tokens, an atomic store 0–200 ms away, the endpoint
    /// 50–500 ms away, a request per instance every 10 minutes, a cold burst of 5 at start, no
    /// faults.
    pub fn new(seed: u64) -> Self {
        Self {
            instances: 100,
            tenants: 1,
            duration_ms: 86_400_000,
            token_life_s: 3_600,
            store: StoreKind::Atomic,
            store_latency_ms: (0, 200),
            endpoint_latency_ms: (50, 500),
            request_gap_ms: 600_000,
            start_burst: 5,
            crash_every_ms: None,
            holder_dies: 0.0,
            holder_pauses: 0.0,
            store_faults: 0.0,
            store_late: 0.0,
            seal_faults: 0.0,
            endpoint_faults: 0.0,
            late_wakeups: 0.0,
            clock_jump_every_ms: None,
            revoke_every_ms: None,
            outage: None,
            storms: Vec::new(),
            quota: None,
            dpop_nonce_every_ms: None,
            policy: Policy::default(),
            seed,
        }
    }

    /// A short scenario whose every choice — store, fleet, load, token life and fault plan — is
    /// drawn from `seed` (the seeds `cargo test` runs; a failing one replays with
    /// [`replay_command`]).
    pub fn drawn(seed: u64) -> Self {
        let mut rng = Rng::new(seed ^ 0xD1CE);
        let pick = |rng: &mut Rng, p: f64, v: f64| if rng.unit() < p { v } else { 0.0 };
        let store = match rng.range((0, 5)) {
            0 => StoreKind::Eventual { lag_ms: 5_000 },
            1 => StoreKind::None,
            _ => StoreKind::Atomic,
        };
        let token_life_s = [120, 300, 900][rng.range((0, 2)) as usize];
        let duration_ms = token_life_s * 1000 * rng.range((3, 8));
        let outage = (rng.unit() < 0.3).then(|| {
            let from = rng.range((0, duration_ms / 2));
            (from, rng.range((10_000, 600_000)))
        });
        let storms = if rng.unit() < 0.3 {
            vec![(
                rng.range((0, duration_ms / 2)),
                rng.range((10_000, 300_000)),
                rng.range((5, 60)),
            )]
        } else {
            Vec::new()
        };
        let mut policy = Policy::default();
        if rng.unit() < 0.2 {
            policy.store_outage = StoreOutage::Fail;
        }
        let mut drawn = Scenario {
            instances: rng.range((2, 24)) as usize,
            tenants: 1,
            duration_ms,
            token_life_s,
            store,
            store_latency_ms: (0, rng.range((5, 400))),
            endpoint_latency_ms: (20, rng.range((50, 2_000))),
            request_gap_ms: rng.range((1_000, 60_000)),
            start_burst: rng.range((1, 20)) as u32,
            crash_every_ms: (rng.unit() < 0.5).then(|| rng.range((60_000, 1_800_000))),
            holder_dies: pick(&mut rng, 0.3, 0.2),
            holder_pauses: pick(&mut rng, 0.4, 0.3),
            store_faults: pick(&mut rng, 0.4, 0.05),
            store_late: pick(&mut rng, 0.3, 0.03),
            seal_faults: pick(&mut rng, 0.3, 0.05),
            endpoint_faults: pick(&mut rng, 0.4, 0.2),
            late_wakeups: pick(&mut rng, 0.3, 0.1),
            clock_jump_every_ms: (rng.unit() < 0.3).then(|| rng.range((60_000, 600_000))),
            revoke_every_ms: (rng.unit() < 0.3).then(|| rng.range((30_000, 600_000))),
            outage,
            storms,
            quota: None,
            dpop_nonce_every_ms: None,
            policy,
            seed,
        };
        // drawn last, so that every choice before it is what it was with one configuration
        if rng.unit() < 0.3 {
            drawn.tenants = rng.range((2, 3)) as usize;
        }
        // and after that, DPoP with server nonces
        if rng.unit() < 0.3 {
            drawn.dpop_nonce_every_ms = Some(rng.range((30_000, 1_800_000)));
        }
        drawn
    }
}

/// The command that replays a drawn seed.
pub fn replay_command(seed: u64) -> String {
    format!("AUTOPAY_SIM_SEED={seed} cargo test --test fleet_simulation replay_a_seed -- --nocapture")
}

/// What a run counted.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    /// Tokens the endpoint minted.
    pub mints: u64,
    /// Of those, tokens whose holder crashed or was paused while its request was out.
    pub mints_lost_with_holder: u64,
    /// Of those, tokens minted while the store was down (or by an instance that found it
    /// unreachable and minted alone).
    pub mints_during_outage: u64,
    /// Refresh intervals in the run (duration over the refresh ratio of the token's life).
    pub intervals: f64,
    /// The most mints in any half token lifetime outside the exceptions above (goal: 1).
    pub worst_interval: u64,
    /// Token requests the endpoint got in all.
    pub token_requests: u64,
    /// Token requests that arrived while a `Retry-After` the endpoint had sent was still running.
    pub requests_during_cooldown: u64,
    /// 429 answers sent.
    pub rate_limited: u64,
    /// Token requests that arrived when the declared quota was already spent (goal: 0).
    pub over_quota: u64,
    /// Token requests answered `use_dpop_nonce` (their proof lacked the current nonce).
    pub nonce_challenges: u64,
    /// Callers served a token.
    pub served: u64,
    /// Of those, tokens already past their true expiry (an invariant: always 0).
    pub expired_served: u64,
    /// Calls that failed, by error code.
    pub errors: BTreeMap<String, u64>,
    /// Store calls made.
    pub store_calls: u64,
    /// Crashes (and restarts), pauses, revocations.
    pub crashes: u64,
    pub pauses: u64,
    pub revocations: u64,
    /// Steps taken (task polls and world events), for the reports.
    pub steps: u64,
}

impl Report {
    /// Mints per refresh interval (goal: 1), outside the store outage and without the tokens
    /// lost with a crashed or paused holder.
    pub fn mints_per_interval(&self) -> f64 {
        (self.mints - self.mints_during_outage - self.mints_lost_with_holder) as f64 / self.intervals.max(1.0)
    }

    /// Caller failures in all.
    pub fn failures(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// xorshift64*: the one source of every random choice of a run.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn range(&mut self, (lo, hi): (u64, u64)) -> u64 {
        lo + (self.unit() * (hi - lo + 1) as f64) as u64
    }
    fn exp(&mut self, mean: u64) -> u64 {
        (-(1.0 - self.unit()).ln() * mean as f64) as u64
    }
}

// ---------------------------------------------------------------------------------------------
// The world: true time, timers, the store, the endpoint, what each instance is doing.

type Job = Box<dyn FnOnce(&Rc<World>)>;

enum Timer {
    Wake(Waker),
    Job(Job),
}

/// A lock claim as the store granted it.
#[derive(Clone, Debug)]
struct Claim {
    owner: String,
    /// When the lock expires (true time).
    expires: u64,
    released: bool,
}

#[derive(Default)]
struct Inst {
    /// The process this instance is a configuration of (its siblings crash, pause and jump
    /// with it), and which configuration.
    process: usize,
    tenant: usize,
    epoch: u64,
    alive: bool,
    paused: bool,
    /// How far this instance's clock is ahead of true time.
    offset: u64,
    /// Task ids woken while paused, run when it resumes.
    deferred: Vec<usize>,
    claim: Option<Claim>,
    /// It found the store unreachable and mints alone (from its `store_outage` event to the end
    /// of that mint).
    alone: bool,
    manager: Option<Manager>,
}

/// A stored value: the value and its expiry (true time); the log keeps every write inside the
/// eventual store's lag.
#[derive(Default)]
struct Kv {
    /// Per key, its writes in order: (applied at, value or deletion, expires at).
    log: HashMap<String, VecDeque<(u64, Option<String>, u64)>>,
    /// Per key, the last write's time (Workers KV takes one write per second per key).
    last_write: HashMap<String, u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Out {
    Sent,
    Answered,
    Lost,
}

struct Task {
    inst: usize,
    epoch: u64,
    fut: Pin<Box<dyn Future<Output = ()>>>,
}

struct TaskWaker {
    id: usize,
    ready: Arc<Mutex<VecDeque<usize>>>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.ready.lock().unwrap().push_back(self.id);
    }
}

/// The whole simulation.
pub struct World {
    s: Scenario,
    /// `AUTOPAY_SIM_TRACE=1`: every instance's events, as they happen.
    trace: bool,
    now: Cell<u64>,
    seq: Cell<u64>,
    timers: RefCell<BinaryHeap<Reverse<(u64, u64)>>>,
    jobs: RefCell<HashMap<u64, Timer>>,
    rng: RefCell<Rng>,
    kv: RefCell<Kv>,
    insts: RefCell<Vec<Inst>>,
    tasks: RefCell<HashMap<usize, Task>>,
    next_task: Cell<usize>,
    ready: Arc<Mutex<VecDeque<usize>>>,
    /// The tokens minted: true expiry, and whether it counts as an exception.
    tokens: RefCell<HashMap<String, u64>>,
    /// Mint times (true), with whether each is an exception (outage, lost with its holder).
    mint_times: RefCell<Vec<(u64, bool, usize)>>,
    /// Every token request: its instance, whether it is out, answered or lost with its holder
    /// (crashed or paused while it was out), and the mint it made.
    inflight: RefCell<Vec<(usize, Out, Option<usize>)>>,
    /// Sealed value → the access token inside (filled when a record is sealed).
    sealed_tokens: RefCell<HashMap<String, String>>,
    revoked: RefCell<HashSet<String>>,
    /// When something happened that costs the fleet one more mint, by a documented cause (a
    /// token revoked, a record whose write failed, a holder stopped with its lock): each
    /// exempts the first mint after it from the interval count.
    debts: RefCell<Vec<(u64, usize)>>,
    /// Per configuration: until when the endpoint's `Retry-After` runs.
    quiet_until: RefCell<Vec<u64>>,
    /// Per configuration, its cache key (for the sealer, which is told only its key).
    keys: RefCell<Vec<String>>,
    /// The declared quota's window: its start, and the requests in it.
    quota_used: RefCell<(u64, u64)>,
    newest_token: RefCell<Option<String>>,
    r: RefCell<Report>,
}

thread_local! {
    /// The world of the run on this thread, for the sealer (whose constructor takes no host).
    static WORLD: RefCell<Option<Rc<World>>> = const { RefCell::new(None) };
}

fn world() -> Rc<World> {
    WORLD.with(|w| w.borrow().clone().expect("a simulation is running"))
}

impl World {
    fn now(&self) -> u64 {
        self.now.get()
    }

    fn draw(&self) -> f64 {
        self.rng.borrow_mut().unit()
    }

    fn range(&self, r: (u64, u64)) -> u64 {
        self.rng.borrow_mut().range(r)
    }

    fn at(&self, t: u64, timer: Timer) {
        let seq = self.seq.get() + 1;
        self.seq.set(seq);
        self.timers.borrow_mut().push(Reverse((t.max(self.now()), seq)));
        self.jobs.borrow_mut().insert(seq, timer);
    }

    fn job(&self, t: u64, f: impl FnOnce(&Rc<World>) + 'static) {
        self.at(t, Timer::Job(Box::new(f)));
    }

    fn violation(&self, what: String) -> ! {
        panic!(
            "invariant broken at t={} ms: {what}\nseed {} — replay: {}",
            self.now(),
            self.s.seed,
            replay_command(self.s.seed)
        );
    }

    fn store_down(&self) -> bool {
        self.s
            .outage
            .is_some_and(|(from, len)| self.now() >= from && self.now() < from + len)
    }

    fn spawn(&self, inst: usize, fut: impl Future<Output = ()> + 'static) {
        let id = self.next_task.get();
        self.next_task.set(id + 1);
        let epoch = self.insts.borrow()[inst].epoch;
        self.tasks.borrow_mut().insert(
            id,
            Task {
                inst,
                epoch,
                fut: Box::pin(fut),
            },
        );
        self.ready.lock().unwrap().push_back(id);
    }

    // --- the store, at the instant a call reaches it --------------------------------------

    fn kv_read(&self, key: &str, lag: u64) -> Option<String> {
        let now = self.now();
        let kv = self.kv.borrow();
        let log = kv.log.get(key)?;
        let seen = log.iter().rev().find(|(t, ..)| *t + lag <= now)?;
        seen.1.clone().filter(|_| seen.2 > now)
    }

    fn kv_write(&self, key: &str, value: Option<String>, ttl_ms: u64) {
        let now = self.now();
        let keep = match self.s.store {
            StoreKind::Eventual { lag_ms } => lag_ms,
            _ => 0,
        };
        let mut kv = self.kv.borrow_mut();
        let log = kv.log.entry(key.to_owned()).or_default();
        log.push_back((now, value, now.saturating_add(ttl_ms)));
        // keep every write a lagging reader may still see, and the newest older one
        while log.len() > 1 && log[1].0 + keep < now {
            log.pop_front();
        }
    }

    /// A record is about to be deleted: only a revoked token's may be.
    fn check_record_delete(&self, key: &str) {
        if key.ends_with(MINT_LOCK_SUFFIX) || key.ends_with(FLEET_SUFFIX) {
            return;
        }
        if let Some(value) = self.kv_read(key, 0) {
            if self.s.revoke_every_ms.is_none() {
                self.violation("a record was deleted, though no token was ever refused".into());
            }
            let token = self.sealed_tokens.borrow().get(&value).cloned();
            if let Some(token) = token
                && !self.revoked.borrow().contains(&token)
            {
                self.violation(format!(
                    "the record of {token}, which was never refused, was deleted"
                ));
            }
        }
    }

    // --- the endpoint, at the instant a token request leaves and arrives --------------------

    /// A token request leaves instance `i`: the lock invariants.
    fn check_send(&self, i: usize) {
        if self.s.store != StoreKind::Atomic {
            return;
        }
        let now = self.now();
        let insts = self.insts.borrow();
        if insts[i].alone {
            return;
        }
        let live = |c: &Option<Claim>| c.as_ref().is_some_and(|c| !c.released && c.expires > now);
        if !live(&insts[i].claim) {
            self.violation(format!(
                "instance {i} sent a token request without a live lock ({:?})",
                insts[i].claim
            ));
        }
        // one configuration's lock says nothing of another's
        for (j, other) in insts.iter().enumerate() {
            if j != i && other.tenant == insts[i].tenant && live(&other.claim) {
                self.violation(format!(
                    "instance {i} sent a token request while instance {j} holds a live lock: two live locks"
                ));
            }
        }
    }

    /// The endpoint's answer to a request for configuration `tenant` arriving now.
    fn answer(&self, i: usize, slot: usize, tenant: usize) -> TokenResponse {
        let now = self.now();
        let mut r = self.r.borrow_mut();
        r.token_requests += 1;
        if now < self.quiet_until.borrow()[tenant] {
            r.requests_during_cooldown += 1;
        }
        // the declared quota: this window's requests, this one included
        let quota = self.s.quota.map(|(q, window)| {
            let start = now - now % window;
            let mut used = self.quota_used.borrow_mut();
            if used.0 != start {
                *used = (start, 0);
            }
            used.1 += 1;
            let left = q.saturating_sub(used.1);
            let header = format!(
                "b=per_hour;q={q};r={left};t={}",
                (start + window - now).div_ceil(1000)
            );
            (used.1 > q, vec![("auth0-client-quota-limit".to_owned(), header)])
        });
        let (over, quota) = quota.unwrap_or_default();
        if over {
            r.over_quota += 1;
            r.rate_limited += 1;
            return TokenResponse {
                status: 429,
                retry_after: None,
                headers: quota.clone(),
                body: r#"{"error":"too_many_requests","error_description":"quota exceeded"}"#.into(),
            };
        }
        let storm = self
            .s
            .storms
            .iter()
            .find(|(from, len, _)| now >= *from && now < from + len)
            .map(|(_, _, ra)| *ra);
        if let Some(retry_after) = storm {
            r.rate_limited += 1;
            let quiet = &mut self.quiet_until.borrow_mut()[tenant];
            *quiet = (*quiet).max(now + retry_after * 1000);
            return TokenResponse {
                status: 429,
                retry_after: Some(retry_after.to_string()),
                headers: quota.clone(),
                body: r#"{"error":"too_many_requests","error_description":"slow down"}"#.into(),
            };
        }
        drop(r);
        if self.draw() < self.s.endpoint_faults {
            return TokenResponse {
                status: 503,
                retry_after: None,
                headers: quota.clone(),
                body: r#"{"error":"temporarily_unavailable","error_description":"try again"}"#.into(),
            };
        }
        let mut r = self.r.borrow_mut();
        r.mints += 1;
        // the token says which configuration's request minted it: `k<tenant>t<n>`
        let token = format!("k{tenant}t{}", r.mints);
        let alone = self.store_down() || self.insts.borrow()[i].alone;
        if alone {
            r.mints_during_outage += 1;
        }
        drop(r);
        let index = self.mint_times.borrow().len();
        self.mint_times.borrow_mut().push((now, alone, tenant));
        if self.trace {
            println!("{now:>10} i{i:<3} minted (alone {alone})");
        }
        self.inflight.borrow_mut()[slot].2 = Some(index);
        let mut tokens = self.tokens.borrow_mut();
        tokens.insert(token.clone(), now + self.s.token_life_s * 1000);
        // an expired token is as good as unknown to the serve check: forget them now and then
        if tokens.len() > 4_096 && self.r.borrow().mints % 4_096 == 0 {
            tokens.retain(|_, expires| *expires > now);
        }
        drop(tokens);
        *self.newest_token.borrow_mut() = Some(token.clone());
        TokenResponse {
            status: 200,
            retry_after: None,
            headers: quota.clone(),
            body: format!(
                r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":{}}}"#,
                self.s.token_life_s
            ),
        }
    }

    /// Instance `i` stops (crash or pause) with token requests out: their tokens are lost with
    /// their holder (the exception the interval count leaves out).
    fn lose_inflight(&self, i: usize) {
        // a holder that stops with its lock may take its token with it (minted, not yet
        // stored): the fleet mints once more when the lock's life has passed
        let now = self.now();
        let holds = self.insts.borrow()[i]
            .claim
            .as_ref()
            .is_some_and(|c| !c.released && c.expires > now);
        if holds {
            let tenant = self.insts.borrow()[i].tenant;
            self.debts.borrow_mut().push((self.now(), tenant));
        }
        for (inst, out, _) in self.inflight.borrow_mut().iter_mut() {
            if *inst == i && *out == Out::Sent {
                *out = Out::Lost;
            }
        }
    }

    fn served(&self, i: usize, token: &str) {
        let now = self.now();
        self.r.borrow_mut().served += 1;
        let tenant = self.insts.borrow()[i].tenant;
        if tenant_of(token) != Some(tenant) {
            self.violation(format!(
                "instance {i} (configuration {tenant}) was served {token}, minted for another configuration"
            ));
        }
        let expires = self.tokens.borrow().get(token).copied();
        match expires {
            Some(t) if now < t => {}
            _ => {
                self.r.borrow_mut().expired_served += 1;
                self.violation(format!("{token} was served past its true expiry"));
            }
        }
    }

    fn failed(&self, e: &Error) {
        *self
            .r
            .borrow_mut()
            .errors
            .entry(e.code().to_string())
            .or_default() += 1;
    }
}

// ---------------------------------------------------------------------------------------------
// The host's parts, as the real driver sees them.

/// The configuration a token was minted for (`k<tenant>t<n>`).
fn tenant_of(token: &str) -> Option<usize> {
    token.strip_prefix('k')?.split('t').next()?.parse().ok()
}

/// A virtual clock: true time plus this instance's offset; sleeping is a timer.
#[derive(Clone)]
pub struct SimClock {
    w: Rc<World>,
    inst: usize,
}

/// Resolves once true time reaches `at`.
fn until(w: &Rc<World>, at: u64) -> impl Future<Output = ()> + use<> {
    let w = Rc::clone(w);
    let mut armed = false;
    std::future::poll_fn(move |cx: &mut Context<'_>| {
        if w.now() >= at {
            return Poll::Ready(());
        }
        if !armed {
            armed = true;
            w.at(at, Timer::Wake(cx.waker().clone()));
        }
        Poll::Pending
    })
}

impl Clock for SimClock {
    fn now_ms(&self) -> u64 {
        self.w.now() + self.w.insts.borrow()[self.inst].offset
    }

    fn sleep(&self, ms: u64) -> impl Future<Output = ()> {
        let late = if self.w.draw() < self.w.s.late_wakeups {
            self.w.range((1, 2_000))
        } else {
            0
        };
        until(&self.w, self.w.now() + ms + late)
    }
}

/// The shared store, a drawn delay away.
pub struct SimStore {
    w: Rc<World>,
    inst: usize,
}

impl SimStore {
    /// One call: `op` runs at the store half-way through the round trip (whatever became of the
    /// caller), its answer arrives at the end; a fault fails it there, or answers after the
    /// caller gave up.
    fn call<T, F>(&self, op: F) -> impl Future<Output = Result<T, StoreError>> + use<T, F>
    where
        T: 'static,
        F: FnOnce(&Rc<World>) -> Result<T, StoreError> + 'static,
    {
        self.call_as(false, op)
    }

    /// [`Self::call`]; for a call that writes a record (`record`), one that fails at the store
    /// leaves the token only in its minter's memory, and the fleet will mint once more after the
    /// lock's life: a debt of the writer's configuration, whether or not its caller is still
    /// there to hear of the failure.
    fn call_as<T, F>(&self, record: bool, op: F) -> impl Future<Output = Result<T, StoreError>> + use<T, F>
    where
        T: 'static,
        F: FnOnce(&Rc<World>) -> Result<T, StoreError> + 'static,
    {
        let w = Rc::clone(&self.w);
        w.r.borrow_mut().store_calls += 1;
        // at least 1 ms: the store acts half-way, strictly before the answer is back
        let rtt = w.range(w.s.store_latency_ms).max(1);
        let now = w.now();
        let answer: Rc<RefCell<Option<Result<T, StoreError>>>> = Rc::new(RefCell::new(None));
        let fault = w.draw() < w.s.store_faults;
        let late = w.draw() < w.s.store_late;
        let back = if late {
            now + w.s.policy.store_timeout_ms + 1_000
        } else {
            now + rtt
        };
        let slot = Rc::clone(&answer);
        let inst = self.inst;
        w.job(now + rtt / 2, move |w| {
            let result = if w.store_down() || fault {
                Err(StoreError("simulated store fault".into()))
            } else {
                op(w)
            };
            if record && result.is_err() {
                let tenant = w.insts.borrow()[inst].tenant;
                w.debts.borrow_mut().push((w.now(), tenant));
            }
            *slot.borrow_mut() = Some(result);
        });
        let done = until(&w, back);
        async move {
            done.await;
            answer
                .borrow_mut()
                .take()
                .unwrap_or_else(|| Err(StoreError("no answer".into())))
        }
    }

    fn lag(&self) -> u64 {
        match self.w.s.store {
            StoreKind::Eventual { lag_ms } => self.w.range((0, lag_ms)),
            _ => 0,
        }
    }
}

impl Store for SimStore {
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<String>, StoreError>> {
        let (key, lag) = (key.to_owned(), self.lag());
        self.call(move |w| Ok(w.kv_read(&key, lag)))
    }

    fn put(&self, key: &str, value: &str, ttl_secs: u64) -> impl Future<Output = Result<(), StoreError>> {
        let (key, value) = (key.to_owned(), value.to_owned());
        let eventual = matches!(self.w.s.store, StoreKind::Eventual { .. });
        let record = !key.ends_with(MINT_LOCK_SUFFIX) && !key.ends_with(FLEET_SUFFIX);
        self.call_as(record, move |w| {
            if eventual {
                assert!(ttl_secs >= 60, "Workers KV refuses a TTL under 60 s");
                let last = w.kv.borrow().last_write.get(&key).copied();
                if last.is_some_and(|t| w.now() < t + 1_000) {
                    return Err(StoreError(
                        "KV put failed: 429 (one write per second per key)".into(),
                    ));
                }
                w.kv.borrow_mut().last_write.insert(key.clone(), w.now());
            }
            w.kv_write(&key, Some(value), ttl_secs * 1000);
            Ok(())
        })
    }

    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> {
        let key = key.to_owned();
        self.call(move |w| {
            w.check_record_delete(&key);
            w.kv_write(&key, None, u64::MAX);
            Ok(())
        })
    }

    fn shared(&self) -> Shared {
        match self.w.s.store {
            StoreKind::Atomic => Shared::Locking,
            _ => Shared::ReadWrite,
        }
    }

    fn min_ttl_secs(&self) -> u64 {
        match self.w.s.store {
            StoreKind::Eventual { .. } => MIN_STORE_TTL_SECS,
            _ => 1,
        }
    }

    fn put_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl_ms: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> {
        let (key, value, inst) = (key.to_owned(), value.to_owned(), self.inst);
        self.call(move |w| {
            if w.kv_read(&key, 0).is_some() {
                return Ok(false);
            }
            w.kv_write(&key, Some(value.clone()), ttl_ms);
            let expires = w.now() + ttl_ms;
            let mut insts = w.insts.borrow_mut();
            insts[inst].claim = Some(Claim {
                owner: value,
                expires,
                released: false,
            });
            insts[inst].alone = false;
            drop(insts);
            holder_faults(w, inst, ttl_ms);
            Ok(true)
        })
    }

    fn delete_if(&self, key: &str, expected: &str) -> impl Future<Output = Result<bool, StoreError>> {
        let (key, expected) = (key.to_owned(), expected.to_owned());
        let atomic = self.w.s.store == StoreKind::Atomic;
        self.call(move |w| {
            if !atomic {
                return Ok(false); // Workers KV cannot compare and delete: the record stays
            }
            if w.kv_read(&key, 0).as_deref() != Some(expected.as_str()) {
                return Ok(false);
            }
            w.check_record_delete(&key);
            w.kv_write(&key, None, u64::MAX);
            for inst in w.insts.borrow_mut().iter_mut() {
                if let Some(c) = inst.claim.as_mut().filter(|c| c.owner == expected) {
                    c.released = true;
                }
            }
            Ok(true)
        })
    }
}

/// A lock holder may crash, or be paused past its lock's life, soon after it took the lock.
fn holder_faults(w: &Rc<World>, inst: usize, ttl_ms: u64) {
    if w.draw() < w.s.holder_dies {
        let at = w.now() + w.range((0, 1_000));
        w.job(at, move |w| crash(w, inst));
    } else if w.draw() < w.s.holder_pauses {
        let at = w.now() + w.range((0, 1_000));
        let length = ttl_ms + w.range((1_000, 60_000));
        w.job(at, move |w| pause(w, inst, length));
    }
}

/// The real token endpoint's client (`Endpoint`) sends through this: the lock invariants are
/// checked as the request leaves; the answer is decided when it arrives.
pub struct SimTransport {
    w: Rc<World>,
    inst: usize,
}

impl Transport for SimTransport {
    fn send(
        &self,
        request: TokenRequest,
        _timeout_ms: u64,
    ) -> impl Future<Output = Result<TokenResponse, Error>> {
        let w = Rc::clone(&self.w);
        let i = self.inst;
        w.check_send(i);
        // whom the request is for, as the real Endpoint wrote it: its scope (`s<tenant>`)
        let body: serde_json::Value = serde_json::from_str(&request.body).expect("a JSON body");
        let tenant = body["scope"]
            .as_str()
            .and_then(|s| s.strip_prefix('s')?.parse().ok())
            .unwrap_or(0);
        if tenant != w.insts.borrow()[i].tenant {
            w.violation(format!(
                "instance {i} sent a token request for configuration {tenant}"
            ));
        }
        let slot = {
            let mut inflight = w.inflight.borrow_mut();
            inflight.push((i, Out::Sent, None));
            inflight.len() - 1
        };
        let rtt = w.range(w.s.endpoint_latency_ms);
        let now = w.now();
        let answer: Rc<RefCell<Option<TokenResponse>>> = Rc::new(RefCell::new(None));
        let put = Rc::clone(&answer);
        let proof_nonce = request.header("dpop").map(proof_nonce);
        w.job(now + rtt / 2, move |w| {
            *put.borrow_mut() = Some(match (w.s.dpop_nonce_every_ms, proof_nonce) {
                (Some(every), Some(sent)) if sent.as_deref() != Some(current_nonce(w, every).as_str()) => {
                    w.r.borrow_mut().nonce_challenges += 1;
                    TokenResponse {
                        status: 400,
                        retry_after: None,
                        headers: vec![("dpop-nonce".to_owned(), current_nonce(w, every))],
                        body: r#"{"error":"use_dpop_nonce"}"#.into(),
                    }
                }
                (Some(_), None) => {
                    w.violation(format!("instance {i} sent a token request without a DPoP proof"))
                }
                _ => w.answer(i, slot, tenant),
            })
        });
        let done = until(&w, now + rtt);
        async move {
            done.await;
            let out = &mut w.inflight.borrow_mut()[slot].1;
            if *out == Out::Sent {
                *out = Out::Answered;
            }
            let answer = answer.borrow_mut().take();
            answer.ok_or_else(|| Error::Network {
                host: "sim".into(),
                message: "no answer".into(),
            })
        }
    }
}

/// The endpoint's DPoP nonce now: a new one every `every` ms.
fn current_nonce(w: &World, every: u64) -> String {
    format!("n{}", w.now() / every)
}

/// The nonce a DPoP proof carries (its claims are read, not its signature: the simulation's
/// server checks what the client must get right, the nonce).
fn proof_nonce(proof: &str) -> Option<String> {
    use base64ct::{Base64UrlUnpadded, Encoding};
    let claims = proof.split('.').nth(1)?;
    let json: serde_json::Value =
        serde_json::from_slice(&Base64UrlUnpadded::decode_vec(claims).ok()?).ok()?;
    json.get("nonce")?.as_str().map(str::to_owned)
}

/// "Signs" DPoP proofs: the simulation's server does not verify signatures.
pub struct SimSigner;

impl Signer for SimSigner {
    async fn sign(&self, _key: &PrivateKey, _input: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(vec![0; 64])
    }
}

/// The fleet's DPoP key (a P-256 JWK), when the endpoint binds tokens.
const SIM_DPOP_KEY: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cLyMqQ0-LGH1cs0nOKFf2c"}"#;

/// The real sealer, with sealing failing by the plan (nonces from the run's seed, so runs are
/// byte for byte the same).
pub struct SimSeal(Sealer, usize);

impl Seal for SimSeal {
    fn new(secret: &ClientSecret, context: &str) -> Self {
        // which configuration it seals for: the one whose key its context starts with
        let tenant = world()
            .keys
            .borrow()
            .iter()
            .position(|k| context.starts_with(k.as_str()))
            .unwrap_or(0);
        SimSeal(Sealer::new(secret, context), tenant)
    }

    async fn seal_text(&self, plain: &str) -> Option<String> {
        let w = world();
        if w.draw() < w.s.seal_faults {
            if TokenRecord::decode(plain).is_some() {
                w.debts.borrow_mut().push((w.now(), self.1));
            }
            return None;
        }
        let mut nonce = [0u8; 12];
        let n = w.rng.borrow_mut().next();
        nonce[..8].copy_from_slice(&n.to_le_bytes());
        nonce[8..].copy_from_slice(&(w.seq.get() as u32).to_le_bytes());
        let value = self.0.seal_plain(plain, nonce);
        // which token a sealed value holds, for the delete check (only revoked tokens' records
        // may be deleted, and only revocations delete records)
        if w.s.revoke_every_ms.is_some()
            && let Some(rec) = TokenRecord::decode(plain)
        {
            w.sealed_tokens
                .borrow_mut()
                .insert(value.clone(), rec.access_token);
        }
        Some(value)
    }

    async fn open_text(&self, value: &str) -> Option<String> {
        self.0.open_plain(value)
    }
}

/// Watches each instance's events: one that declares the store unreachable and mints alone.
pub struct SimObserver {
    w: Rc<World>,
    inst: usize,
}

impl Observe for SimObserver {
    fn observe(&self, e: &Event) {
        if self.w.trace {
            println!("{:>10} i{:<3} {:?}", self.w.now(), self.inst, e);
        }
        let alone = &mut self.w.insts.borrow_mut()[self.inst].alone;
        match e.kind {
            EventKind::StoreOutage if e.detail.as_deref() == Some("mint") => *alone = true,
            EventKind::Mint => *alone = false,
            EventKind::TokenError if e.detail.is_none() => *alone = false,
            _ => {}
        }
    }
}

pub type SimHost =
    Parts<Endpoint<SimTransport, SimClock, SimSigner>, SimStore, SimClock, Wakers, SimSeal, SimObserver>;
pub type Manager = TokenManager<SimHost>;

fn manager(w: &Rc<World>, inst: usize) -> Manager {
    let tenant = w.insts.borrow()[inst].tenant;
    let mut config = Config::builder("https://as.sim.example/token", "sim-client")
        .client_secret(ClientSecret::new("sim-secret"))
        .audience(None);
    // many configurations: each its own scope (the one field that differs) and label
    if w.s.tenants > 1 {
        config = config.scope(&format!("s{tenant}")).label(&format!("t{tenant}"));
    }
    let dpop_key =
        w.s.dpop_nonce_every_ms
            .map(|_| autopay_auth::dpop::check_key(SIM_DPOP_KEY, None).expect("a valid DPoP key"));
    if let Some(key) = &dpop_key {
        config = config.dpop_key(key.clone());
    }
    let config = config.build().expect("a valid config");
    w.keys.borrow_mut()[tenant] = config.cache_key().to_owned();
    let clock = SimClock {
        w: Rc::clone(w),
        inst,
    };
    let transport = SimTransport {
        w: Rc::clone(w),
        inst,
    };
    let store = (w.s.store != StoreKind::None).then(|| SimStore {
        w: Rc::clone(w),
        inst,
    });
    let mut source = Endpoint::new(config.clone(), transport, clock.clone()).with_signer(SimSigner);
    if let Some(key) = dpop_key {
        source = source.with_prover(Arc::new(autopay_auth::dpop::Prover::new(key, SimSigner)));
    }
    let host = Parts::new(source, store, clock)
        .with_seal::<SimSeal>()
        .with_observer(SimObserver {
            w: Rc::clone(w),
            inst,
        });
    let jitter = w.draw() * 2.0 - 1.0;
    TokenManager::new(&config, w.s.policy.clone(), jitter, host).expect("a valid policy")
}

// ---------------------------------------------------------------------------------------------
// Instances: start, requests, crashes, pauses, clock jumps.

fn start(w: &Rc<World>, i: usize) {
    let m = manager(w, i);
    {
        let mut insts = w.insts.borrow_mut();
        insts[i].alive = true;
        insts[i].alone = false;
        insts[i].manager = Some(m);
    }
    for _ in 0..w.s.start_burst {
        request(w, i);
    }
    let epoch = w.insts.borrow()[i].epoch;
    let gap = w.rng.borrow_mut().exp(w.s.request_gap_ms).max(1);
    w.job(w.now() + gap, move |w| requests(w, i, epoch));
    if let Some(mean) = w.s.crash_every_ms
        && w.insts.borrow()[i].tenant == 0
    {
        let t = w.now() + w.rng.borrow_mut().exp(mean);
        w.job(t, move |w| {
            if w.insts.borrow()[i].epoch == epoch {
                crash(w, i);
            }
        });
    }
}

/// The request chain of one life of instance `i` (a restart starts a new chain; this one ends).
fn requests(w: &Rc<World>, i: usize, epoch: u64) {
    if w.insts.borrow()[i].epoch != epoch {
        return;
    }
    request(w, i);
    let gap = w.rng.borrow_mut().exp(w.s.request_gap_ms).max(1);
    w.job(w.now() + gap, move |w| requests(w, i, epoch));
}

/// One caller: a token; if the API refuses it (revoked), report it and ask once more.
fn request(w: &Rc<World>, i: usize) {
    let Some(m) = w.insts.borrow()[i].manager.clone() else {
        return;
    };
    let world = Rc::clone(w);
    w.spawn(i, async move {
        let mut retried = false;
        loop {
            match m.get().await {
                Ok(lookup) => {
                    let token = lookup.served.record.access_token.clone();
                    world.served(i, &token);
                    if let Some(refresh) = lookup.refresh {
                        world.spawn(i, refresh.run());
                    }
                    if !retried && world.revoked.borrow().contains(&token) {
                        retried = true;
                        if m.invalidate_token(&token).await == Refusal::Dropped {
                            continue;
                        }
                    }
                }
                Err(e) => world.failed(&e),
            }
            break;
        }
    });
}

/// The instances of `i`'s process: one per configuration, `i` among them.
fn siblings(w: &World, i: usize) -> Vec<usize> {
    let insts = w.insts.borrow();
    let p = insts[i].process;
    (0..insts.len()).filter(|&j| insts[j].process == p).collect()
}

/// The process of instance `i` crashes: every configuration it holds, and starts again cold
/// within a minute.
fn crash(w: &Rc<World>, i: usize) {
    let back = w.now() + w.range((1_000, 60_000));
    for j in siblings(w, i) {
        crash_one(w, j, back);
    }
}

fn crash_one(w: &Rc<World>, i: usize, back: u64) {
    if !w.insts.borrow()[i].alive {
        return;
    }
    w.lose_inflight(i);
    w.r.borrow_mut().crashes += 1;
    {
        let mut insts = w.insts.borrow_mut();
        let inst = &mut insts[i];
        inst.epoch += 1;
        inst.alive = false;
        inst.paused = false;
        inst.alone = false;
        inst.deferred.clear();
        inst.manager = None;
    }
    // its tasks are dropped (their I/O already sent still reaches the store)
    w.tasks.borrow_mut().retain(|_, t| t.inst != i);
    w.job(back, move |w| start(w, i));
}

/// The process of instance `i` is paused for `length`: every configuration it holds.
fn pause(w: &Rc<World>, i: usize, length: u64) {
    for j in siblings(w, i) {
        pause_one(w, j, length);
    }
}

fn pause_one(w: &Rc<World>, i: usize, length: u64) {
    {
        let insts = w.insts.borrow();
        if !insts[i].alive || insts[i].paused {
            return;
        }
    }
    w.lose_inflight(i);
    w.r.borrow_mut().pauses += 1;
    w.insts.borrow_mut()[i].paused = true;
    let epoch = w.insts.borrow()[i].epoch;
    w.job(w.now() + length, move |w| {
        let mut insts = w.insts.borrow_mut();
        if insts[i].epoch != epoch {
            return;
        }
        insts[i].paused = false;
        let deferred = std::mem::take(&mut insts[i].deferred);
        w.ready.lock().unwrap().extend(deferred);
    });
}

fn jumps(w: &Rc<World>, i: usize, mean: u64) {
    let t = w.now() + w.rng.borrow_mut().exp(mean).max(1);
    w.job(t, move |w| {
        // forward, and within half the expiry margin in all: more skew than that between
        // instances is what the margin is for, not a fault of the client
        let cap = (w.s.token_life_s * 1000) / 20;
        let jump = w.range((1, 30_000));
        // one clock per process
        for j in siblings(w, i) {
            let offset = &mut w.insts.borrow_mut()[j].offset;
            *offset = (*offset + jump).min(cap);
        }
        jumps(w, i, mean);
    });
}

fn revocations(w: &Rc<World>, mean: u64) {
    let t = w.now() + w.rng.borrow_mut().exp(mean).max(1);
    w.job(t, move |w| {
        if let Some(token) = w.newest_token.borrow().clone()
            && w.revoked.borrow_mut().insert(token.clone())
        {
            w.r.borrow_mut().revocations += 1;
            let tenant = tenant_of(&token).unwrap_or(0);
            w.debts.borrow_mut().push((w.now(), tenant));
            if w.trace {
                println!("{:>10} revoked the newest token", w.now());
            }
        }
        revocations(w, mean);
    });
}

// ---------------------------------------------------------------------------------------------
// The executor.

/// One simulation run.
pub struct Sim {
    w: Rc<World>,
}

impl Sim {
    pub fn new(s: Scenario) -> Self {
        let (n, tenants) = (s.instances, s.tenants.max(1));
        let w = Rc::new(World {
            rng: RefCell::new(Rng::new(s.seed)),
            trace: std::env::var_os("AUTOPAY_SIM_TRACE").is_some(),
            s,
            now: Cell::new(0),
            seq: Cell::new(0),
            timers: RefCell::new(BinaryHeap::new()),
            jobs: RefCell::new(HashMap::new()),
            kv: RefCell::new(Kv::default()),
            insts: RefCell::new(
                (0..n * tenants)
                    .map(|v| Inst {
                        process: v / tenants,
                        tenant: v % tenants,
                        ..Inst::default()
                    })
                    .collect(),
            ),
            tasks: RefCell::new(HashMap::new()),
            next_task: Cell::new(0),
            ready: Arc::new(Mutex::new(VecDeque::new())),
            tokens: RefCell::new(HashMap::new()),
            mint_times: RefCell::new(Vec::new()),
            inflight: RefCell::new(Vec::new()),
            sealed_tokens: RefCell::new(HashMap::new()),
            revoked: RefCell::new(HashSet::new()),
            debts: RefCell::new(Vec::new()),
            quiet_until: RefCell::new(vec![0; tenants]),
            keys: RefCell::new(vec![String::new(); tenants]),
            quota_used: RefCell::default(),
            newest_token: RefCell::new(None),
            r: RefCell::new(Report::default()),
        });
        Sim { w }
    }

    /// Runs to the end and reports.
    pub fn run(self) -> Report {
        let w = self.w;
        WORLD.with(|slot| *slot.borrow_mut() = Some(Rc::clone(&w)));
        let _clear = ClearWorld;
        let all = w.insts.borrow().len();
        for i in 0..all {
            w.job(0, move |w| start(w, i));
            if let Some(mean) = w.s.clock_jump_every_ms
                && w.insts.borrow()[i].tenant == 0
            {
                jumps(&w, i, mean);
            }
        }
        if let Some(mean) = w.s.revoke_every_ms {
            revocations(&w, mean);
        }
        loop {
            run_ready(&w);
            let next = w.timers.borrow_mut().pop();
            let Some(Reverse((t, seq))) = next else { break };
            if t > w.s.duration_ms {
                break;
            }
            w.now.set(t);
            w.r.borrow_mut().steps += 1;
            let timer = w.jobs.borrow_mut().remove(&seq).expect("scheduled");
            match timer {
                Timer::Wake(waker) => waker.wake(),
                Timer::Job(job) => job(&w),
            }
        }
        // drop every task (and its manager) before the world goes
        w.tasks.borrow_mut().clear();
        for inst in w.insts.borrow_mut().iter_mut() {
            inst.manager = None;
        }
        finish(&w)
    }
}

struct ClearWorld;

impl Drop for ClearWorld {
    fn drop(&mut self) {
        WORLD.with(|slot| {
            if let Ok(mut w) = slot.try_borrow_mut() {
                *w = None;
            }
        });
    }
}

/// Polls every task that can run (paused instances' tasks wait for their resume).
fn run_ready(w: &Rc<World>) {
    loop {
        let next = w.ready.lock().unwrap().pop_front();
        let Some(id) = next else { return };
        let Some(mut task) = w.tasks.borrow_mut().remove(&id) else {
            continue;
        };
        {
            let mut insts = w.insts.borrow_mut();
            let inst = &mut insts[task.inst];
            if inst.epoch != task.epoch {
                continue; // its instance crashed: dropped
            }
            if inst.paused {
                inst.deferred.push(id);
                drop(insts);
                w.tasks.borrow_mut().insert(id, task);
                continue;
            }
        }
        w.r.borrow_mut().steps += 1;
        let waker = Waker::from(Arc::new(TaskWaker {
            id,
            ready: Arc::clone(&w.ready),
        }));
        let mut cx = Context::from_waker(&waker);
        if task.fut.as_mut().poll(&mut cx).is_pending() {
            w.tasks.borrow_mut().insert(id, task);
        }
    }
}

fn finish(w: &Rc<World>) -> Report {
    let life = w.s.token_life_s * 1000;
    let tenants = w.s.tenants.max(1);
    let mut r = w.r.borrow().clone();
    // refresh intervals of every configuration
    r.intervals = tenants as f64 * w.s.duration_ms as f64 / (life as f64 * w.s.policy.refresh_ratio);
    // a token request whose holder crashed or was paused while it was out: its token is lost
    let mut exceptions: Vec<bool> = w.mint_times.borrow().iter().map(|(_, alone, _)| *alone).collect();
    for (_, out, index) in w.inflight.borrow().iter() {
        if let (Out::Lost, Some(index)) = (*out, index) {
            if !exceptions[*index] {
                r.mints_lost_with_holder += 1;
            }
            exceptions[*index] = true;
        }
    }
    // each debt exempts the first mint of its configuration after it that is not exempt already
    let mut debts = w.debts.borrow().clone();
    debts.sort_unstable();
    let mints = w.mint_times.borrow().clone();
    for (debt, tenant) in debts {
        if let Some(k) =
            (0..mints.len()).find(|&k| mints[k].0 >= debt && mints[k].2 == tenant && !exceptions[k])
        {
            exceptions[k] = true;
        }
    }
    let outage = w.s.outage;
    let in_outage = |t: u64| outage.is_some_and(|(from, len)| t >= from && t < from + len + life);
    let window = life / 2;
    let mut worst = 0;
    for tenant in 0..tenants {
        let mut times: Vec<u64> = mints
            .iter()
            .zip(&exceptions)
            .filter(|((t, _, of), exception)| *of == tenant && !**exception && !in_outage(*t))
            .map(|((t, _, _), _)| *t)
            .collect();
        times.sort_unstable();
        let mut lo = 0;
        for hi in 0..times.len() {
            while times[hi] - times[lo] >= window {
                lo += 1;
            }
            worst = worst.max(hi - lo + 1);
        }
    }
    r.worst_interval = worst as u64;
    r
}
