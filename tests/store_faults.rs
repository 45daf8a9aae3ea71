//! The shared store is a cache, never a dependency: garbage is a miss, failures are counted
//! and survived, and a token the API refused is dropped only where it is still cached.
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
    }
}

#[test]
fn failing_store_is_counted_and_survived() {
    let w = World::new();
    w.store.fail.set(true);
    let m = w.manager(true);
    assert_eq!(get(&m).unwrap().record.access_token, "tok-1");
    assert_eq!(m.stats().kv_errors, 2); // the get and the put
    assert_eq!(get(&m).unwrap().source, Source::Memory);
    block_on(m.invalidate());
    assert_eq!(m.stats().kv_errors, 3);
}

#[test]
fn invalidate_token_is_compare_and_delete() {
    let w = World::new();
    let m = w.manager(true);
    get(&m).unwrap();
    // a token that is no longer cached: nothing happens
    assert_eq!(block_on(m.invalidate_token("tok-0")), Refusal::NotHeld);
    assert_eq!(get(&m).unwrap().source, Source::Memory);
    // the cached token: dropped from memory and store; the next call mints once
    assert_eq!(block_on(m.invalidate_token("tok-1")), Refusal::Dropped);
    assert!(w.store.value(m.cache_key()).is_none());
    assert_eq!(get(&m).unwrap().record.access_token, "tok-2");
    assert_eq!(w.transport.calls(), 2);
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
