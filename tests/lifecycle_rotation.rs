//! Tokens move fresh → stale → expired: stale ones are served while one background refresh
//! runs; expired ones are never served; short tokens are used for most of their life.
mod support;
use autopay_auth::*;
use support::*;

#[test]
fn short_tokens_are_reminted_after_expiry_and_not_before() {
    let w = World::new();
    w.transport.expires_in.set(5);
    w.transport.latency_ms.set(0);
    let m = w.manager(false);
    assert_eq!(get(&m).unwrap().record.access_token, "tok-1");
    // fresh until 3.75 s: memory hits, no requests
    for _ in 0..37 {
        w.clock.advance(100);
        assert_eq!(lookup(&m).unwrap().served.record.access_token, "tok-1");
    }
    assert_eq!(w.transport.calls(), 1);
    // at 4.5 s (usable_until) it is not served: a caller waits for a new token
    w.clock.set(START_MS + 4_500);
    let l = lookup(&m).unwrap();
    assert_eq!(
        (l.served.record.access_token.as_str(), l.served.source),
        ("tok-2", Source::Network)
    );
    assert_eq!(w.transport.calls(), 2);
}

#[test]
fn stale_token_is_served_while_one_refresh_runs() {
    let w = World::new();
    let m = w.manager(true);
    get(&m).unwrap();
    w.clock.set(START_MS + 64_800_000); // 18 h: stale
    let first = lookup(&m).unwrap();
    assert_eq!(first.served.record.access_token, "tok-1");
    assert!(first.refresh.is_some());
    // while that refresh has not finished, others are served the stale token with no new refresh
    for _ in 0..5 {
        let l = lookup(&m).unwrap();
        assert_eq!(l.served.record.access_token, "tok-1");
        assert!(l.refresh.is_none());
    }
    block_on(first.refresh.unwrap().run());
    assert_eq!(w.transport.calls(), 2);
    let after = get(&m).unwrap();
    assert_eq!(
        (after.record.access_token.as_str(), after.source),
        ("tok-2", Source::Memory)
    );
    assert_eq!(m.stats().refreshes, 1);
    assert_eq!(open(&w.store.value(m.cache_key()).unwrap()).access_token, "tok-2");
}

#[test]
fn failed_refresh_keeps_serving_and_backs_off() {
    let w = World::new();
    let m = w.manager(false);
    get(&m).unwrap();
    w.clock.set(START_MS + 70_000_000);
    w.transport.then(status(500, "")).then(status(500, ""));
    get(&m).unwrap(); // refresh fails
    assert_eq!(w.transport.calls(), 2);
    // within the 1 s backoff: still the old token, and no new attempt
    for _ in 0..20 {
        assert_eq!(get(&m).unwrap().record.access_token, "tok-1");
    }
    assert_eq!(w.transport.calls(), 2);
    w.clock.advance(1_000);
    get(&m).unwrap(); // second attempt, fails again: backoff now 2 s
    assert_eq!(w.transport.calls(), 3);
    w.clock.advance(1_500);
    get(&m).unwrap();
    assert_eq!(w.transport.calls(), 3);
    w.clock.advance(600);
    get(&m).unwrap(); // third attempt succeeds
    assert_eq!(w.transport.calls(), 4);
    assert_eq!(get(&m).unwrap().record.access_token, "tok-4");
}

#[test]
fn refresh_honours_retry_after() {
    let w = World::new();
    let m = w.manager(false);
    get(&m).unwrap();
    w.clock.set(START_MS + 70_000_000);
    w.transport.then(Ok(TokenResponse {
        status: 429,
        retry_after: Some("30".into()),
        headers: Vec::new(),
        body: r#"{"error":"rate_limited","error_description":"slow down"}"#.into(),
    }));
    get(&m).unwrap();
    w.clock.advance(29_000);
    get(&m).unwrap();
    assert_eq!(w.transport.calls(), 2);
    w.clock.advance(1_000);
    get(&m).unwrap();
    assert_eq!(w.transport.calls(), 3);
}

#[test]
fn refresh_adopts_a_token_another_instance_already_refreshed() {
    let w = World::new();
    let a = w.manager(true);
    let b = w.manager(true);
    get(&a).unwrap();
    get(&b).unwrap();
    w.clock.set(START_MS + 70_000_000);
    get(&a).unwrap(); // a refreshes: tok-2 into the store
    assert_eq!(w.transport.calls(), 2);
    get(&b).unwrap(); // b is stale too, but finds tok-2 in the store
    assert_eq!(w.transport.calls(), 2);
    assert_eq!(get(&b).unwrap().record.access_token, "tok-2");
}

#[test]
fn expired_store_records_are_not_served() {
    let w = World::new();
    let a = w.manager(true);
    get(&a).unwrap();
    w.clock.set(START_MS + 86_400_000 - 1_000); // inside the hard margin, KV TTL not yet run out
    let b = w.manager(true);
    let s = get(&b).unwrap();
    assert_eq!(
        (s.record.access_token.as_str(), s.source),
        ("tok-2", Source::Network)
    );
}

#[test]
fn lease_lasts_while_fresh() {
    let w = World::new();
    let m = w.manager(false);
    assert!(m.lease().is_none());
    get(&m).unwrap();
    let lease = m.lease().unwrap();
    assert_eq!(lease.until_ms, START_MS + 64_800_000);
    w.clock.set(lease.until_ms);
    assert!(m.lease().is_none());
}
