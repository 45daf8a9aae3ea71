//! Processes sharing one store that can `put_if_absent` (Redis, Deno KV) mint once between
//! them: one takes the minting lock, the others wait for its token in the store.
mod support;
use std::rc::Rc;

use autopay_auth::*;
use futures::executor::LocalPool;
use support::*;

/// Ten cold calls on each process, all under way at once: token answers are held until nothing
/// can run (each process is at the token endpoint, or waiting on the minting lock), then
/// released; the simulated clock then jumps from timer to timer.
fn cold_burst(w: &World, managers: &[Manager]) -> Vec<Result<Served, Error>> {
    let hold = &w.transport.gate;
    let mut pool = LocalPool::new();
    let out = spawn_gets(&pool, managers, 10);
    hold.close();
    pool.run_until_stalled();
    hold.open();
    run_all(&mut pool);
    Rc::try_unwrap(out).unwrap().into_inner()
}

#[test]
fn processes_sharing_an_atomic_store_mint_once() {
    let w = World::new();
    w.store.atomic.set(true);
    let processes: Vec<_> = (0..4).map(|_| w.manager(true)).collect();
    let results = cold_burst(&w, &processes);
    assert_eq!(results.len(), 40);
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().unwrap().record.access_token == "tok-1")
    );
    assert_eq!(w.transport.calls(), 1, "one mint between all processes");
    // the winner was held at the token endpoint until every process had looked in the store
    // and found nothing: the other three waited on the lock, then took the winner's token
    let from_store: u64 = processes.iter().map(|m| m.stats().kv_hits).sum();
    assert_eq!(
        from_store, 3,
        "the other three took the winner's token from the store"
    );
    let lock = format!("{}{MINT_LOCK_SUFFIX}", processes[0].cache_key());
    assert!(
        w.store.value(&lock).is_none(),
        "the lock is released after minting"
    );
}

/// The minting lock's life under the default policy (see `Policy::lock_ttl_ms`).
const LOCK_TTL: u64 = 39_000;

/// A process on an atomic store whose minting lock another (dead) process holds until `until`.
fn locked_until(until: u64) -> (World, Manager) {
    let w = World::new();
    w.store.atomic.set(true);
    let m = w.manager(true);
    let lock = format!("{}{MINT_LOCK_SUFFIX}", m.cache_key());
    w.store.map.borrow_mut().insert(lock, ("minting".into(), until));
    (w, m)
}

#[test]
fn a_lock_left_by_a_dead_process_delays_the_next_mint_until_it_expires_then_one_mints() {
    let (w, m) = locked_until(START_MS + LOCK_TTL);
    let s = get(&m).unwrap();
    assert_eq!(
        (s.record.access_token.as_str(), s.source),
        ("tok-1", Source::Network)
    );
    let waited = w.clock.now() - START_MS;
    assert!(
        (LOCK_TTL..LOCK_TTL + 600).contains(&waited),
        "waited {waited} ms: until the dead holder's lock expired, never minting under it"
    );
    assert_eq!(w.transport.calls(), 1);
}

#[test]
fn a_lock_held_longer_than_any_holder_may_is_a_typed_error_not_a_mint() {
    // a lock no instance of this policy would set: held for ten minutes
    let (w, m) = locked_until(START_MS + 600_000);
    let e = get(&m).unwrap_err();
    assert_eq!(e.code(), "store_unavailable");
    assert_eq!(w.transport.calls(), 0);
    let waited = w.clock.now() - START_MS;
    assert!(
        (LOCK_TTL..LOCK_TTL + 3_000).contains(&waited),
        "gave up after {waited} ms"
    );
}

#[test]
fn without_atomic_puts_each_process_mints_its_own() {
    let w = World::new();
    let processes: Vec<_> = (0..4).map(|_| w.manager(true)).collect();
    let results = cold_burst(&w, &processes);
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(
        w.transport.calls(),
        4,
        "KV-like stores share tokens but cannot stop a cold race"
    );
}

#[test]
fn a_store_that_fails_to_lock_still_gets_a_token() {
    let w = World::new();
    w.store.atomic.set(true);
    w.store.fail.set(true);
    let m = w.manager(true);
    let s = get(&m).unwrap();
    assert_eq!(
        (s.record.access_token.as_str(), s.source),
        ("tok-1", Source::Network)
    );
    // the store was tried for storeWaitMs (11 reads, every 500 ms) and stayed unreachable, so
    // this instance minted alone (the default `StoreOutage::Mint`) — a request that is its own,
    // never the fleet's budget, so only the record's write was tried (and failed)
    assert_eq!(m.stats().kv_errors, 12);
    assert_eq!(w.transport.calls(), 1);
    assert!(
        w.clock.now() - START_MS < DEFAULT_STORE_WAIT_MS + 1_000,
        "a broken store costs storeWaitMs, not the lock timeout"
    );
}

#[test]
fn a_holder_frees_only_its_own_lock() {
    let w = World::new();
    w.store.atomic.set(true);
    let m = w.manager(true);
    let lock = format!("{}{MINT_LOCK_SUFFIX}", m.cache_key());
    let mut pool = LocalPool::new();
    let out = spawn_gets(&pool, std::slice::from_ref(&m), 1);
    // the holder's token request is out…
    w.transport.gate.close();
    pool.run_until_stalled();
    let owner = w.store.value(&lock).expect("the holder's lock");
    assert_ne!(owner, "minting", "the lock's value is a random owner id");
    // …while its lock expired and another process took it
    w.store
        .map
        .borrow_mut()
        .insert(lock.clone(), ("another-owner".into(), u64::MAX));
    w.transport.gate.open();
    run_all(&mut pool);
    assert!(out.borrow()[0].is_ok());
    assert_eq!(
        w.store.value(&lock).as_deref(),
        Some("another-owner"),
        "the release is fenced: another owner's lock is never deleted"
    );
}

/// A sealer for a platform that cannot seal (no randomness, no crypto).
struct NoSeal;

impl Seal for NoSeal {
    fn new(_secret: &ClientSecret, _context: &str) -> Self {
        NoSeal
    }
    async fn seal_text(&self, _plain: &str) -> Option<String> {
        None
    }
    async fn open_text(&self, _value: &str) -> Option<String> {
        None
    }
}

#[test]
fn a_record_that_cannot_be_sealed_is_a_failed_write_and_the_lock_is_kept() {
    let w = World::new();
    w.store.atomic.set(true);
    let config = config();
    let source = Endpoint::new(config.clone(), w.transport.clone(), w.clock.clone());
    let host = Parts::new(source, Some(w.store.clone()), w.clock.clone()).with_seal::<NoSeal>();
    let m = TokenManager::new(&config, Policy::default(), 0.0, host).unwrap();
    assert_eq!(get(&m).unwrap().record.access_token, "tok-1");
    assert!(w.store.value(m.cache_key()).is_none(), "nothing plain is stored");
    let lock = format!("{}{MINT_LOCK_SUFFIX}", m.cache_key());
    assert!(
        w.store.value(&lock).is_some(),
        "the token exists but the fleet cannot read it: the lock is kept, so nobody mints another"
    );
    assert!(m.stats().kv_errors >= 1);
}
