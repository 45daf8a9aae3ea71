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
    // the read and both writes (the record, the fleet state) failed, and were survived: the
    // store being unreachable, this instance minted alone (the default `StoreOutage::Mint`)
    assert_eq!(m.stats().kv_errors, 3);
    assert_eq!(w.transport.calls(), 1);
    assert!(
        w.clock.now() - START_MS < 1_000,
        "a broken store costs a short pause, not the lock timeout"
    );
}
