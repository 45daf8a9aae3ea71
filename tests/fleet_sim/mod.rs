//! A fleet simulation over the real lifecycle [`Machine`]: N instances with no shared memory,
//! one simulated clock, a simulated store whose every call takes a random delay, and a token
//! endpoint — quinn's test-pair style, scaled up. Deterministic: a seed gives the same run, so a
//! failure is a reproducible seed.
//!
//! Each instance is one `Machine` driven as the real driver drives it (every action is I/O that
//! completes later; a flight that lands wakes the instance's waiters). The store is one of:
//! - `Atomic` (Redis, Deno KV, DynamoDB): linearisable, with `put_if_absent`;
//! - `Eventual` (Workers KV): no lock, and a read sees only writes older than a random lag;
//! - `None`: every instance alone (the baseline: a client with no shared store).
//!
//! Faults: instances crash and restart cold at random; a lock holder may die right after its
//! token request left (the token is minted and lost); the store may be down for a while (every
//! call fails); the token endpoint may answer 429 with `Retry-After` for a while.
#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use autopay_auth::*;

/// What the fleet shares.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StoreKind {
    /// Linearisable, with an atomic set-if-absent (Redis, Deno KV, DynamoDB).
    Atomic,
    /// No lock; a read sees only the writes older than a random lag up to `lag_ms` (Workers KV).
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

/// One scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub instances: usize,
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
    /// Mean time between crashes of one instance (ms), if instances crash; a crashed instance
    /// starts again, cold, within a minute.
    pub crash_every_ms: Option<u64>,
    /// Chance that a lock holder dies right after its token request left.
    pub holder_dies: f64,
    /// The store is down (every call fails) from `.0` for `.1` ms.
    pub outage: Option<(u64, u64)>,
    /// The endpoint answers 429 with `Retry-After: .2` s from `.0` for `.1` ms.
    pub storms: Vec<(u64, u64, u64)>,
    pub policy: Policy,
    pub seed: u64,
}

impl Scenario {
    /// Defaults: 100 instances, a day, 1 h tokens, an atomic store 0–200 ms away, the endpoint
    /// 50–500 ms away, a request per instance every 10 minutes, a cold burst of 5 at start.
    pub fn new(seed: u64) -> Self {
        Self {
            instances: 100,
            duration_ms: 86_400_000,
            token_life_s: 3_600,
            store: StoreKind::Atomic,
            store_latency_ms: (0, 200),
            endpoint_latency_ms: (50, 500),
            request_gap_ms: 600_000,
            start_burst: 5,
            crash_every_ms: None,
            holder_dies: 0.0,
            outage: None,
            storms: Vec::new(),
            policy: Policy::default(),
            seed,
        }
    }
}

/// What a run counted.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    /// Tokens the endpoint minted.
    pub mints: u64,
    /// Of those, tokens whose holder died before it could store them.
    pub mints_lost_with_holder: u64,
    /// Of those, tokens minted while the store was down.
    pub mints_during_outage: u64,
    /// Refresh intervals in the run (duration over 75 % of the token's life).
    pub intervals: f64,
    /// The most mints in any half token lifetime outside the store outage (goal: 1).
    pub worst_interval: u64,
    /// Token requests the endpoint got in all.
    pub token_requests: u64,
    /// Token requests that arrived while a `Retry-After` the endpoint had sent was still running.
    pub requests_during_cooldown: u64,
    /// 429 answers sent.
    pub rate_limited: u64,
    /// Tokens handed to callers.
    pub served: u64,
    /// Of those, tokens already past their absolute expiry (goal: 0).
    pub expired_served: u64,
    /// Of those, tokens inside their hard margin (goal: 0).
    pub past_margin_served: u64,
    /// Calls that failed, by error code.
    pub errors: HashMap<String, u64>,
    /// Store calls made.
    pub store_calls: u64,
    /// Crashes (and restarts).
    pub crashes: u64,
}

impl Report {
    /// Mints per refresh interval (goal: 1), outside the store outage and without the tokens
    /// lost with a dead holder (each is replaced once).
    pub fn mints_per_interval(&self) -> f64 {
        (self.mints - self.mints_during_outage - self.mints_lost_with_holder) as f64 / self.intervals.max(1.0)
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, (lo, hi): (u64, u64)) -> u64 {
        lo + (self.unit() * (hi - lo + 1) as f64) as u64
    }
    fn exp(&mut self, mean: u64) -> u64 {
        (-(1.0 - self.unit()).ln() * mean as f64) as u64
    }
}

/// What a store value is (plain: the simulation seals nothing).
#[derive(Clone, Debug)]
enum Value {
    Record(TokenRecord),
    Fleet(FleetState),
    Lock,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    Record,
    Fleet,
    Lock,
}

/// The store: per key, its writes in order (time, value or deletion, expiry).
#[derive(Default)]
struct Store {
    writes: HashMap<Key, Vec<(u64, Option<Value>, u64)>>,
}

impl Store {
    fn write(&mut self, at: u64, key: Key, value: Option<Value>, ttl_ms: u64) {
        let log = self.writes.entry(key).or_default();
        log.push((at, value, at.saturating_add(ttl_ms)));
        if log.len() > 8 {
            log.remove(0);
        }
    }
    /// The value of `key` as seen at `at` by a reader lagging `lag` behind.
    fn read(&self, at: u64, lag: u64, key: Key) -> Option<Value> {
        let log = self.writes.get(&key)?;
        let seen = log.iter().rev().find(|(t, ..)| *t + lag <= at)?;
        seen.1.clone().filter(|_| seen.2 > at)
    }
}

/// The answer an I/O action gets.
enum Done {
    Read(Result<StoreRead, StoreError>),
    Claim(Result<bool, StoreError>),
    Minted(Result<TokenRecord, Error>),
    Saved(Vec<Result<(), StoreError>>),
}

enum Op {
    Read { fleet: bool, lag: u64 },
    Claim { ttl_ms: u64 },
}

enum Ev {
    /// A caller arrives at an instance.
    Request(usize),
    /// An instance starts (cold), with its burst.
    Start(usize),
    /// An instance crashes.
    Crash(usize),
    /// A store write lands (applied at the store, half a round trip after it was sent).
    StoreWrite(Key, Option<Value>, u64),
    /// A read or a claim reaches the store; its answer reaches instance `.0` (generation `.1`,
    /// call `.2`) at `.4`.
    Arrive(usize, u64, u64, Op, u64),
    /// An I/O answer reaches instance `.0` of generation `.1`, for call `.2`.
    Answer(usize, u64, u64, Done),
    /// A call's wait ends (if `.3` is still its wait).
    Wake(usize, u64, u64, u64),
}

struct Instance {
    m: Machine,
    epoch: u64,
    alive: bool,
    /// Calls waiting (WaitUntil), with their wait's number.
    waiting: HashMap<u64, (Call, u64)>,
    /// Calls whose I/O is out.
    busy: HashMap<u64, Call>,
}

/// The simulation of one scenario.
pub struct Sim {
    s: Scenario,
    rng: Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: HashMap<u64, Ev>,
    instances: Vec<Instance>,
    store: Store,
    next_call: u64,
    quiet_until: u64,
    /// When each minted token was issued, and whether it was lost with its holder.
    mint_times: Vec<(u64, bool)>,
    r: Report,
}

impl Sim {
    pub fn new(s: Scenario) -> Self {
        let mut rng = Rng(s.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let instances = (0..s.instances)
            .map(|_| Instance {
                m: new_machine(&s, &mut rng),
                epoch: 0,
                alive: false,
                waiting: HashMap::new(),
                busy: HashMap::new(),
            })
            .collect();
        Self {
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            instances,
            store: Store::default(),
            next_call: 0,
            quiet_until: 0,
            mint_times: Vec::new(),
            r: Report::default(),
            s,
        }
    }

    fn at(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((t, self.seq)));
        self.events.insert(self.seq, ev);
    }

    /// Runs to the end and reports.
    pub fn run(mut self) -> Report {
        for i in 0..self.s.instances {
            self.at(0, Ev::Start(i));
        }
        while let Some(Reverse((t, id))) = self.queue.pop() {
            if t > self.s.duration_ms {
                break;
            }
            self.now = t;
            let ev = self.events.remove(&id).expect("scheduled");
            self.handle(ev);
        }
        self.finish()
    }

    fn finish(mut self) -> Report {
        let life = self.s.token_life_s * 1000;
        self.r.intervals = self.s.duration_ms as f64 / (life as f64 * self.s.policy.refresh_ratio);
        let outage = self.s.outage;
        let in_outage = |t: u64| outage.is_some_and(|(from, len)| t >= from && t < from + len + life);
        // served tokens only: one lost with a dead holder is replaced, as it must be
        let mut times: Vec<u64> = self
            .mint_times
            .iter()
            .filter(|(t, lost)| !lost && !in_outage(*t))
            .map(|(t, _)| *t)
            .collect();
        times.sort_unstable();
        let window = life / 2;
        let mut worst = 0;
        let mut lo = 0;
        for hi in 0..times.len() {
            while times[hi] - times[lo] >= window {
                lo += 1;
            }
            worst = worst.max(hi - lo + 1);
        }
        self.r.worst_interval = worst as u64;
        self.r
    }

    fn store_down(&self) -> bool {
        self.s
            .outage
            .is_some_and(|(from, len)| self.now >= from && self.now < from + len)
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Start(i) => {
                let inst = &mut self.instances[i];
                inst.alive = true;
                for _ in 0..self.s.start_burst {
                    self.request(i);
                }
                let gap = self.rng.exp(self.s.request_gap_ms);
                self.at(self.now + gap, Ev::Request(i));
                if let Some(mean) = self.s.crash_every_ms {
                    let t = self.now + self.rng.exp(mean);
                    self.at(t, Ev::Crash(i));
                }
            }
            Ev::Request(i) => {
                if !self.instances[i].alive {
                    return;
                }
                self.request(i);
                let gap = self.rng.exp(self.s.request_gap_ms).max(1);
                self.at(self.now + gap, Ev::Request(i));
            }
            Ev::Crash(i) => self.crash(i),
            Ev::StoreWrite(key, value, ttl) => self.store.write(self.now, key, value, ttl),
            Ev::Arrive(i, epoch, id, op, back_at) => self.arrive(i, epoch, id, op, back_at),
            Ev::Answer(i, epoch, call_id, done) => {
                let inst = &mut self.instances[i];
                if inst.epoch != epoch || !inst.alive {
                    return;
                }
                let Some(mut call) = inst.busy.remove(&call_id) else {
                    return;
                };
                let now = self.now;
                let action = match done {
                    Done::Read(r) => inst.m.stored(now, &mut call, r),
                    Done::Claim(r) => inst.m.claimed(now, &mut call, r),
                    Done::Minted(r) => inst.m.minted(now, &mut call, r),
                    Done::Saved(r) => inst.m.saved(now, &mut call, &r),
                };
                self.act(i, call_id, call, action);
            }
            Ev::Wake(i, epoch, call_id, wait) => {
                let inst = &mut self.instances[i];
                if inst.epoch != epoch {
                    return;
                }
                match inst.waiting.get(&call_id) {
                    Some((_, w)) if *w == wait => {}
                    _ => return,
                }
                let (mut call, _) = inst.waiting.remove(&call_id).expect("waiting");
                let action = inst.m.want(self.now, &mut call);
                self.act(i, call_id, call, action);
            }
        }
    }

    fn crash(&mut self, i: usize) {
        self.r.crashes += 1;
        let m = new_machine(&self.s, &mut self.rng);
        let inst = &mut self.instances[i];
        inst.m = m;
        inst.epoch += 1;
        inst.alive = false;
        inst.waiting.clear();
        inst.busy.clear();
        let back = self.now + self.rng.range((1_000, 60_000));
        self.at(back, Ev::Start(i));
    }

    fn request(&mut self, i: usize) {
        self.next_call += 1;
        let id = self.next_call;
        let mut call = Call::new(Want::Usable);
        let action = self.instances[i].m.want(self.now, &mut call);
        self.act(i, id, call, action);
    }

    fn served(&mut self, rec: &TokenRecord) {
        self.r.served += 1;
        if self.now >= rec.expires_at_ms {
            self.r.expired_served += 1;
        }
        if self.now >= self.s.policy.timeline(rec, 1.0).usable_until_ms {
            self.r.past_margin_served += 1;
        }
    }

    /// Carries out `action` for call `id` of instance `i`.
    fn act(&mut self, i: usize, id: u64, call: Call, action: Action) {
        let now = self.now;
        let epoch = self.instances[i].epoch;
        match action {
            Action::Serve(s) => self.served(&s.record),
            Action::ServeAndRefresh(s, mut refresh) => {
                self.served(&s.record);
                self.next_call += 1;
                let rid = self.next_call;
                let a = self.instances[i].m.want(now, &mut refresh);
                self.act(i, rid, refresh, a);
            }
            Action::Fail(e) => *self.r.errors.entry(e.code().to_string()).or_default() += 1,
            Action::WaitUntil(t) => {
                self.seq += 1;
                let wait = self.seq;
                self.instances[i].waiting.insert(id, (call, wait));
                self.at(t.max(now), Ev::Wake(i, epoch, id, wait));
            }
            Action::ReadStore { fleet } => {
                let lag = match self.s.store {
                    StoreKind::Eventual { lag_ms } => self.rng.range((0, lag_ms)),
                    _ => 0,
                };
                self.send(i, id, call, Op::Read { fleet, lag });
            }
            Action::ClaimLock { ttl_ms } => self.send(i, id, call, Op::Claim { ttl_ms }),
            Action::Mint { .. } => {
                let (half, rtt) = self.trip(self.s.endpoint_latency_ms);
                let arrives = now + half;
                self.r.token_requests += 1;
                if arrives < self.quiet_until {
                    self.r.requests_during_cooldown += 1;
                }
                let storm = self
                    .s
                    .storms
                    .iter()
                    .find(|(from, len, _)| arrives >= *from && arrives < from + len)
                    .map(|(_, _, ra)| *ra);
                let result = if let Some(retry_after) = storm {
                    self.r.rate_limited += 1;
                    self.quiet_until = self.quiet_until.max(arrives + retry_after * 1000);
                    Err(Error::RateLimited(ServerError {
                        status: 429,
                        error: Some("too_many_requests".into()),
                        description: None,
                        retry_after: Some(retry_after),
                    }))
                } else {
                    self.r.mints += 1;
                    self.mint_times.push((arrives, false));
                    if self.store_down() {
                        self.r.mints_during_outage += 1;
                    }
                    Ok(TokenRecord {
                        access_token: format!("t{}", self.r.mints),
                        token_type: "Bearer".into(),
                        scope: None,
                        issued_at_ms: now,
                        expires_at_ms: now + self.s.token_life_s * 1000,
                    })
                };
                let locked = self.s.store == StoreKind::Atomic && !self.store_down();
                if locked && result.is_ok() && self.rng.unit() < self.s.holder_dies {
                    // the holder dies with its token request out: minted, and lost
                    self.r.mints_lost_with_holder += 1;
                    if let Some(last) = self.mint_times.last_mut() {
                        last.1 = true;
                    }
                    self.crash(i);
                    return;
                }
                self.io(i, id, call, now + rtt, Done::Minted(result));
            }
            Action::Save { record, fleet } => {
                let (half, rtt) = self.store_trip();
                let mut results = Vec::new();
                let writes = [
                    record.map(|(r, ttl)| (Key::Record, Value::Record((*r).clone()), ttl)),
                    fleet.map(|(f, ttl)| (Key::Fleet, Value::Fleet(f), ttl)),
                ];
                for (key, value, ttl) in writes.into_iter().flatten() {
                    if self.store_down() {
                        results.push(Err(StoreError("down".into())));
                    } else {
                        self.at(now + half, Ev::StoreWrite(key, Some(value), ttl * 1000));
                        results.push(Ok(()));
                    }
                }
                self.io(i, id, call, now + rtt, Done::Saved(results));
            }
            Action::Unlock => {
                let (half, rtt) = self.store_trip();
                let result = if self.store_down() {
                    Err(StoreError("down".into()))
                } else {
                    self.at(now + half, Ev::StoreWrite(Key::Lock, None, u64::MAX));
                    Ok(())
                };
                self.io(i, id, call, now + rtt, Done::Saved(vec![result]));
            }
        }
        self.after_event(i);
    }

    /// A read or claim on its way: it takes effect when it reaches the store.
    fn send(&mut self, i: usize, id: u64, call: Call, op: Op) {
        let (half, rtt) = self.store_trip();
        let epoch = self.instances[i].epoch;
        self.instances[i].busy.insert(id, call);
        self.at(self.now + half, Ev::Arrive(i, epoch, id, op, self.now + rtt));
    }

    /// A read or claim at the store, now: its answer goes back to the caller.
    fn arrive(&mut self, i: usize, epoch: u64, id: u64, op: Op, back_at: u64) {
        let now = self.now;
        let done = match op {
            _ if self.store_down() => match op {
                Op::Read { .. } => Done::Read(Err(StoreError("down".into()))),
                Op::Claim { .. } => Done::Claim(Err(StoreError("down".into()))),
            },
            Op::Read { fleet, lag } => {
                let record = match self.store.read(now, lag, Key::Record) {
                    Some(Value::Record(r)) => Some(r),
                    _ => None,
                };
                let fleet = match self.store.read(now, lag, Key::Fleet) {
                    Some(Value::Fleet(f)) if fleet => Some(f),
                    _ => None,
                };
                Done::Read(Ok(StoreRead { record, fleet }))
            }
            Op::Claim { .. } if self.s.store != StoreKind::Atomic => {
                unreachable!("the machine asks only a store that locks to lock")
            }
            Op::Claim { ttl_ms } => {
                let taken = self.store.read(now, 0, Key::Lock).is_some();
                if !taken {
                    self.store.write(now, Key::Lock, Some(Value::Lock), ttl_ms);
                }
                Done::Claim(Ok(!taken))
            }
        };
        self.at(back_at, Ev::Answer(i, epoch, id, done));
    }

    fn io(&mut self, i: usize, id: u64, call: Call, at: u64, done: Done) {
        let epoch = self.instances[i].epoch;
        self.instances[i].busy.insert(id, call);
        self.at(at, Ev::Answer(i, epoch, id, done));
    }

    /// Wakes the instance's waiters when a flight landed; drops the machine's events.
    fn after_event(&mut self, i: usize) {
        let inst = &mut self.instances[i];
        let _ = inst.m.take_events();
        if inst.m.take_landed() {
            let epoch = inst.epoch;
            let waiting: Vec<(u64, u64)> = inst.waiting.iter().map(|(id, (_, w))| (*id, *w)).collect();
            for (id, w) in waiting {
                self.at(self.now, Ev::Wake(i, epoch, id, w));
            }
        }
    }

    fn store_trip(&mut self) -> (u64, u64) {
        self.r.store_calls += 1;
        self.trip(self.s.store_latency_ms)
    }

    fn trip(&mut self, range: (u64, u64)) -> (u64, u64) {
        let rtt = self.rng.range(range);
        (rtt / 2, rtt)
    }
}

fn new_machine(s: &Scenario, rng: &mut Rng) -> Machine {
    let jitter = rng.unit() * 2.0 - 1.0;
    let shared = match s.store {
        StoreKind::None => Shared::Memory,
        StoreKind::Eventual { .. } => Shared::ReadWrite,
        StoreKind::Atomic => Shared::Locking,
    };
    Machine::new(s.policy.clone(), jitter, shared).expect("a valid policy")
}
