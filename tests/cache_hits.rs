//! First call mints, later calls are memory hits; a second instance on the same store is a
//! store hit; the store holds a versioned record with the remaining TTL and no secret.
mod support;
use autopay_auth::seal::SEALED_PREFIX;
use autopay_auth::*;
use support::*;

#[test]
fn first_call_mints_then_memory_hits() {
    let w = World::new();
    let m = w.manager(false);
    let a = get(&m).unwrap();
    assert_eq!(
        (a.source, a.record.access_token.as_str()),
        (Source::Network, "tok-1")
    );
    for _ in 0..10 {
        let b = get(&m).unwrap();
        assert_eq!(
            (b.source, b.record.access_token.as_str()),
            (Source::Memory, "tok-1")
        );
    }
    assert_eq!(w.transport.calls(), 1);
    let s = m.stats();
    assert_eq!((s.mints, s.memory_hits, s.kv_hits, s.failures), (1, 10, 0, 0));
}

#[test]
fn second_instance_on_same_store_is_a_store_hit() {
    let w = World::new();
    let a = w.manager(true);
    let b = w.manager(true);
    assert_eq!(get(&a).unwrap().source, Source::Network);
    let hit = get(&b).unwrap();
    assert_eq!(
        (hit.source, hit.record.access_token.as_str()),
        (Source::Store, "tok-1")
    );
    assert_eq!(get(&b).unwrap().source, Source::Memory);
    assert_eq!(w.transport.calls(), 1);
    assert_eq!(b.stats().kv_hits, 1);
}

#[test]
fn stored_record_has_absolute_expiry_remaining_ttl_and_no_secret() {
    let w = World::new();
    w.transport.latency_ms.set(2_000);
    let m = w.manager(true);
    get(&m).unwrap();
    let puts = w.store.puts.borrow();
    let (records, fleet): (Vec<_>, Vec<_>) = puts.iter().partition(|(k, ..)| k == m.cache_key());
    assert_eq!(records.len(), 1);
    // beside it, the fleet state (the budget window): sealed too, naming neither secret nor token
    assert_eq!(fleet.len(), 1);
    let (fleet_key, fleet_value, fleet_ttl) = fleet[0];
    assert_eq!(*fleet_key, format!("{}{FLEET_SUFFIX}", m.cache_key()));
    assert!(
        fleet_value.starts_with(SEALED_PREFIX)
            && !fleet_value.contains(SECRET)
            && !fleet_value.contains("tok-1")
    );
    assert_eq!(
        *fleet_ttl,
        3_600 - 2,
        "kept while the budget window counts the request"
    );
    let (key, value, ttl) = records[0];
    assert_eq!(key, m.cache_key());
    assert!(!key.contains(SECRET) && !value.contains(SECRET));
    // expiry from the send time; TTL is what is left when written (2 s later)
    assert_eq!(*ttl, 86_400 - 2);
    assert!(
        value.starts_with(SEALED_PREFIX) && !value.contains("tok-1"),
        "sealed: {value}"
    );
    let rec = open(value);
    assert_eq!(rec.issued_at_ms, START_MS);
    assert_eq!(rec.expires_at_ms, START_MS + 86_400_000);
}

#[test]
fn short_token_is_kept_in_memory_only() {
    let w = World::new();
    w.transport.expires_in.set(59);
    let m = w.manager(true);
    get(&m).unwrap();
    assert!(
        w.store.puts.borrow().iter().all(|(k, ..)| k != m.cache_key()),
        "never clamp a short token into a longer TTL"
    );
    assert_eq!(get(&m).unwrap().source, Source::Memory);
}

#[test]
fn short_token_is_shared_where_the_store_takes_short_ttls() {
    let w = World::new();
    w.store.min_ttl.set(1);
    w.transport.expires_in.set(59);
    let m = w.manager(true);
    get(&m).unwrap();
    let ttls: Vec<u64> = w
        .store
        .puts
        .borrow()
        .iter()
        .filter(|(k, ..)| k == m.cache_key())
        .map(|p| p.2)
        .collect();
    assert_eq!(
        ttls,
        [58],
        "stored for what is left of it when written (1 s on), no longer"
    );
    // another instance on the same store is served it, without a token request
    let other = w.manager(true);
    let served = get(&other).unwrap();
    assert_eq!(served.source, Source::Store);
    assert_eq!(w.transport.calls.get(), 1);
}
