//! The shared store is a cache, never a dependency and never trusted: garbage, forged and
//! foreign records are misses, failures and hangs are counted and survived, and a token the API
//! refused is dropped only where it is still cached.
mod support;
use autopay_auth::*;
use support::*;

#[test]
fn garbage_and_other_versions_are_misses() {
    for junk in [
        "garbage",
        "{}",
        r#"{"v":9,"access_token":"old","token_type":"Bearer","issued_at_ms":1,"expires_at_ms":99999999999999}"#,
    ] {
        let w = World::new();
        let m = w.manager(true);
        w.store.raw_put(m.cache_key(), junk);
        let s = get(&m).unwrap();
        assert_eq!(s.source, Source::Network, "{junk}");
        assert_eq!(m.stats().kv_errors, 0);
        assert_eq!(m.stats().kv_rejected, 1);
    }
}

#[test]
fn whoever_can_write_the_store_cannot_plant_a_token() {
    let planted = |access_token: &str, issued: u64, expires: u64| TokenRecord {
        access_token: access_token.into(),
        token_type: "Bearer".into(),
        scope: None,
        issued_at_ms: issued,
        expires_at_ms: expires,
    };
    let day = 86_400_000;
    let other = Sealer::new(&ClientSecret::new("another-secret"), config().cache_key());
    let cases = [
        (
            "a plain record of the old format",
            planted("evil", START_MS, START_MS + day).encode(),
        ),
        (
            "a record sealed with another secret",
            other.seal(&planted("evil", START_MS, START_MS + day), [1; 12]),
        ),
        // sealed with the right key (the secret leaked): still checked like any answer
        (
            "a token with CR/LF",
            sealer().seal(&planted("evil\r\nX-Evil: 1", START_MS, START_MS + day), [2; 12]),
        ),
        (
            "an unbounded expiry",
            sealer().seal(&planted("evil", START_MS, u64::MAX / 2), [3; 12]),
        ),
        (
            "issued in the future",
            sealer().seal(&planted("evil", START_MS + day, START_MS + 2 * day), [4; 12]),
        ),
    ];
    for (what, value) in cases {
        let w = World::new();
        let m = w.manager(true);
        w.store.raw_put(m.cache_key(), &value);
        let s = get(&m).unwrap();
        assert_eq!(
            (s.record.access_token.as_str(), s.source),
            ("tok-1", Source::Network),
            "{what}"
        );
    }
}

#[test]
fn a_store_that_never_answers_costs_its_bound_not_a_hang() {
    let w = World::new();
    w.store.hang.set(true);
    let m = w.manager(true);
    let s = get(&m).unwrap();
    assert_eq!(
        (s.record.access_token.as_str(), s.source),
        ("tok-1", Source::Network)
    );
    // three reads timed out after 3 s each (the store is tried for storeWaitMs after the
    // first), then it minted alone, and the record's write timed out too (a token minted
    // alone is this instance's: no fleet state is written for it)
    assert_eq!(m.stats().kv_errors, 4);
    assert!(
        w.clock.now() - START_MS < 3_000 + DEFAULT_STORE_WAIT_MS + 3_000 + 3_000,
        "took {} ms",
        w.clock.now() - START_MS
    );
}

#[test]
fn failing_store_is_counted_and_survived() {
    let w = World::new();
    w.store.fail.set(true);
    let m = w.manager(true);
    assert_eq!(get(&m).unwrap().record.access_token, "tok-1");
    // 11 reads over storeWaitMs, and the record's put (minted alone)
    assert_eq!(m.stats().kv_errors, 12);
    assert_eq!(get(&m).unwrap().source, Source::Memory);
    block_on(m.invalidate());
    assert_eq!(m.stats().kv_errors, 13);
}

#[test]
fn invalidate_token_is_compare_and_delete() {
    let w = World::new();
    let m = w.manager(true);
    get(&m).unwrap();
    // a token that is no longer cached: nothing happens
    assert_eq!(block_on(m.invalidate_token("tok-0")), Refusal::NotHeld);
    assert_eq!(get(&m).unwrap().source, Source::Memory);
    assert_eq!(
        open(&w.store.value(m.cache_key()).unwrap()).access_token,
        "tok-1",
        "the store keeps the other token"
    );
    // the cached token: dropped from memory and store; the next call mints once
    assert_eq!(block_on(m.invalidate_token("tok-1")), Refusal::Dropped);
    assert!(w.store.value(m.cache_key()).is_none());
    assert_eq!(get(&m).unwrap().record.access_token, "tok-2");
    assert_eq!(w.transport.calls(), 2);
}

#[test]
fn a_refusal_never_deletes_the_token_another_instance_stored_since() {
    let w = World::new();
    let a = w.manager(true);
    get(&a).unwrap();
    // another instance replaced the stored token (tok-2) while `a` still holds tok-1
    let b = w.manager(true);
    assert_eq!(block_on(b.invalidate_token("tok-1")), Refusal::NotHeld);
    w.store.map.borrow_mut().remove(a.cache_key());
    assert_eq!(get(&b).unwrap().record.access_token, "tok-2");
    // the API refuses tok-1 at `a`: dropped there, and the store keeps tok-2
    assert_eq!(block_on(a.invalidate_token("tok-1")), Refusal::Dropped);
    let kept = open(&w.store.value(a.cache_key()).expect("still stored"));
    assert_eq!(kept.access_token, "tok-2");
    assert_eq!(
        get(&a).unwrap().record.access_token,
        "tok-2",
        "taken from the store, no mint"
    );
    assert_eq!(w.transport.calls(), 2);
}

#[test]
fn a_token_stored_between_the_refusals_read_and_its_delete_survives() {
    let w = World::new();
    let m = w.manager(true);
    get(&m).unwrap();
    // another instance stores tok-9 right after this one read tok-1's record to compare it
    let key = m.cache_key().to_owned();
    let newer = sealer().seal(&record("tok-9", START_MS, 86_400), [9; 12]);
    *w.store.after_get.borrow_mut() = Some(Box::new(move |map| {
        map.insert(key, (newer, u64::MAX));
    }));
    assert_eq!(block_on(m.invalidate_token("tok-1")), Refusal::Dropped);
    // the delete compares the value it read, in one store operation: tok-9 is not touched
    let kept = open(&w.store.value(m.cache_key()).expect("tok-9 is still stored"));
    assert_eq!(kept.access_token, "tok-9");
    assert_eq!(get(&m).unwrap().record.access_token, "tok-9", "taken, not minted");
    assert_eq!(w.transport.calls(), 1);
}

#[test]
fn refused_token_is_not_taken_back_from_a_lagging_store() {
    let w = World::new();
    let m = w.manager(true);
    get(&m).unwrap();
    let stale_copy = w.store.value(m.cache_key()).unwrap();
    let _ = block_on(m.invalidate_token("tok-1"));
    // an eventually consistent store still answers with the old record
    w.store.raw_put(m.cache_key(), &stale_copy);
    assert_eq!(get(&m).unwrap().record.access_token, "tok-2");
}

#[test]
fn invalidate_forgets_everywhere() {
    let w = World::new();
    let m = w.manager(true);
    get(&m).unwrap();
    block_on(m.invalidate());
    assert!(w.store.value(m.cache_key()).is_none());
    assert_eq!(get(&m).unwrap().source, Source::Network);
}

#[test]
fn a_fleet_state_that_cannot_be_read_is_never_taken_for_none() {
    let w = World::new();
    w.store.atomic.set(true);
    // the record reads fine; the fleet state (the gate and the budget) cannot be read
    *w.store.fail_reads_of.borrow_mut() = Some(FLEET_SUFFIX.into());
    let config = config();
    let policy = Policy {
        store_outage: StoreOutage::Fail,
        ..Policy::default()
    };
    let source = Endpoint::new(config.clone(), w.transport.clone(), w.clock.clone());
    let host = Parts::new(source, Some(w.store.clone()), w.clock.clone());
    let m = TokenManager::new(&config, policy, 0.0, host).unwrap();
    // the fleet may be in a cooldown or out of budget: with `storeOutage: 'fail'` nothing is
    // sent without knowing
    assert_eq!(get(&m).unwrap_err().code(), "store_unavailable");
    assert_eq!(w.transport.calls(), 0);
}
