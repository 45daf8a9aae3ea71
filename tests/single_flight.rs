//! No token storms: concurrent cold calls share one token request, and so do failures.
mod support;
use std::rc::Rc;

use std::future::Future;

use autopay_auth::*;
use futures::executor::LocalPool;
use support::*;

fn concurrent(w: &World, m: &Manager, n: usize) -> Vec<Result<Served, Error>> {
    let mut pool = LocalPool::new();
    let gate = &w.transport.gate;
    gate.close();
    let out = spawn_gets(&pool, std::slice::from_ref(m), n);
    pool.run_until_stalled(); // every caller is now waiting: one on the request, the rest on it
    gate.open();
    run_all(&mut pool);
    Rc::try_unwrap(out).unwrap().into_inner()
}

#[test]
fn five_hundred_cold_calls_mint_once() {
    let w = World::new();
    let m = w.manager(true);
    let results = concurrent(&w, &m, 500);
    assert_eq!(results.len(), 500);
    for r in &results {
        assert_eq!(r.as_ref().unwrap().record.access_token, "tok-1");
    }
    assert_eq!(w.transport.calls(), 1);
    assert_eq!(m.stats().mints, 1);
    assert_eq!(m.stats().coalesced, 499);
}

#[test]
fn a_failing_mint_is_retried_for_every_waiter_then_fails_them_all_and_backs_off() {
    let w = World::new();
    let down = r#"{"error":"temporarily_unavailable","error_description":"down"}"#;
    w.transport
        .then(status(503, down))
        .then(status(503, down))
        .then(status(503, down));
    let m = w.manager(false);
    let results = concurrent(&w, &m, 50);
    assert_eq!(
        w.transport.calls(),
        3,
        "one mint, three attempts, shared by all 50"
    );
    for r in &results {
        let e = r.as_ref().unwrap_err();
        assert_eq!((e.code(), e.status()), ("server_error", Some(503)));
        assert_eq!(e.server().unwrap().description.as_deref(), Some("down"));
    }
    assert_eq!(m.stats().failures, 3);
    // within the backoff the next caller gets the error without a request…
    assert_eq!(get(&m).unwrap_err().code(), "server_error");
    assert_eq!(w.transport.calls(), 3);
    // …and after it, tries again
    w.clock.advance(1_000);
    assert_eq!(get(&m).unwrap().record.access_token, "tok-4");
}

#[test]
fn a_passing_fault_is_retried_inside_the_same_mint() {
    let w = World::new();
    w.transport.then(status(502, "")).then(Err(Error::Network {
        host: "api-auth.autopay.io".into(),
        message: "reset".into(),
    }));
    let m = w.manager(false);
    let results = concurrent(&w, &m, 20);
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().unwrap().record.access_token == "tok-3")
    );
    assert_eq!(w.transport.calls(), 3);
    assert_eq!(m.stats().mints, 1);
}

#[test]
fn invalid_answers_cache_nothing_and_are_held() {
    let w = World::new();
    w.transport.then(status(
        200,
        r#"{"access_token":"x","expires_in":0,"token_type":"Bearer"}"#,
    ));
    let m = w.manager(true);
    assert_eq!(get(&m).unwrap_err().code(), "invalid_response");
    // no record is stored; only the fleet state, holding the failure for every instance
    assert_eq!(w.store.put_keys(), [format!("{}{FLEET_SUFFIX}", m.cache_key())]);
    assert!(m.phase().is_none());
    // the same answer would come again: held for 30 s, without a request
    assert_eq!(get(&m).unwrap_err().code(), "invalid_response");
    assert_eq!(w.transport.calls(), 1);
    w.clock.advance(30_000);
    assert_eq!(get(&m).unwrap().source, Source::Network);
}

#[test]
fn transport_errors_pass_through() {
    let w = World::new();
    for _ in 0..3 {
        w.transport.then(Err(Error::Timeout {
            host: "api-auth.autopay.io".into(),
            after_ms: 10_000,
        }));
    }
    let m = w.manager(false);
    assert_eq!(get(&m).unwrap_err().code(), "timeout");
    assert_eq!(w.transport.calls(), 3);
}

#[test]
fn however_many_callers_see_a_stale_token_one_refresh_starts() {
    let w = World::new();
    let m = w.manager(false);
    let results = concurrent(&w, &m, 5);
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(w.transport.calls(), 1);
    w.clock.set(START_MS + 70_000_000);
    let first = lookup(&m).unwrap();
    assert!(first.refresh.is_some());
    for _ in 0..10 {
        assert!(lookup(&m).unwrap().refresh.is_none());
    }
    block_on(first.refresh.unwrap().run());
    assert_eq!(w.transport.calls(), 2);
}

#[test]
fn a_flight_that_never_finishes_is_forgotten_after_its_deadline() {
    let w = World::new();
    let m = w.manager(false);
    // a token request whose I/O was cancelled: it never answers
    w.transport.gate.close();
    let mut stuck = Box::pin(m.get());
    let waker = futures::task::noop_waker();
    let _ = stuck.as_mut().poll(&mut std::task::Context::from_waker(&waker));
    assert_eq!(w.transport.calls(), 1);
    // while it could still answer, callers join it
    w.clock.advance(10_000);
    let mut joined = Box::pin(m.get());
    let _ = joined.as_mut().poll(&mut std::task::Context::from_waker(&waker));
    assert_eq!((w.transport.calls(), m.stats().coalesced), (1, 1));
    // past its deadline (timeout + grace), a new caller starts a new request
    w.clock.advance(20_000);
    w.transport.gate.open();
    drop((stuck, joined));
    assert_eq!(get(&m).unwrap().record.access_token, "tok-2");
    assert_eq!(w.transport.calls(), 2);
}

#[test]
fn a_token_request_that_never_answers_ends_at_its_bound_even_if_the_transport_ignores_it() {
    let w = World::new();
    w.transport.gate.close(); // a fetch that ignores its abort signal: never answers
    let m = w.manager(false);
    let e = get(&m).unwrap_err();
    assert_eq!(e.code(), "timeout");
    assert!(e.to_string().contains("api-auth.autopay.io"), "{e}");
    // each attempt ends at its timeout plus 1 s; two fit in the 30 s mint deadline
    assert_eq!(w.transport.calls(), 2);
    let took = w.clock.now() - START_MS;
    assert!((22_000..30_000).contains(&took), "took {took} ms");
}
