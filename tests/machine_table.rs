//! The lifecycle machine alone, as tables: (state, event, now) → action, at every edge time —
//! refresh point, hard margin, expiry, backoff end, flight deadline, lock polling. No async, no
//! clock: each row is plain data in, plain data out.
mod support;
use autopay_auth::*;
use support::record;

const LIFE_S: u64 = 100;
/// With the default policy and no jitter, a 100 s token issued at 0 is stale from 75 s and
/// never served from 90 s (margin: min(300 s, 10 % of its life)).
const REFRESH_AT: u64 = 75_000;
const USABLE_UNTIL: u64 = 90_000;
/// A step's bound: the request timeout (10 s) plus the grace (2 s).
const BOUND: u64 = 12_000;

fn token(name: &str, issued: u64) -> TokenRecord {
    record(name, issued, LIFE_S)
}

fn machine(store: bool) -> Machine {
    Machine::new(Policy::default(), 0.0, store).unwrap()
}

/// A short name for an action, with what matters in it.
fn show(a: &Action) -> String {
    match a {
        Action::Serve(s) => format!("Serve({}, {})", s.record.access_token, s.source.as_str()),
        Action::ServeAndRefresh(s, _) => format!("ServeAndRefresh({})", s.record.access_token),
        Action::ReadStore { fleet } => format!("ReadStore(fleet={fleet})"),
        Action::Unlock => "Unlock".into(),
        Action::ClaimLock { ttl_ms } => format!("ClaimLock({ttl_ms})"),
        Action::Mint { replacing } => format!("Mint({})", replacing.as_deref().unwrap_or("-")),
        Action::Save { record, fleet } => format!(
            "Save({}, fleet={})",
            record.as_ref().map_or(0, |(_, ttl)| *ttl),
            match fleet {
                None => "-".to_string(),
                Some((f, _)) => f
                    .gate
                    .as_ref()
                    .map_or("window".into(), |g| format!("{:?}", g.kind)),
            }
        ),
        Action::WaitUntil(t) => format!("WaitUntil({t})"),
        Action::Fail(e) => format!("Fail({})", e.code()),
    }
}

/// A machine holding token `t1`, minted by a cold call at 0 (no store).
fn holding_t1() -> Machine {
    let mut m = machine(false);
    let mut c = Call::new(Want::Usable);
    assert_eq!(show(&m.want(0, &mut c)), "Mint(-)");
    assert_eq!(
        show(&m.minted(0, &mut c, Ok(token("t1", 0)))),
        "Serve(t1, network)"
    );
    m
}

/// A cold call at 0 whose store read missed: its owner is about to claim the minting lock.
fn store_missed() -> (Machine, Call) {
    let mut m = machine(true);
    let mut c = Call::new(Want::Usable);
    m.want(0, &mut c);
    m.stored(0, &mut c, Ok(None));
    (m, c)
}

fn want(m: &mut Machine, now: u64) -> String {
    show(&m.want(now, &mut Call::new(Want::Usable)))
}

fn network() -> Error {
    Error::Network {
        host: "h".into(),
        message: "reset".into(),
    }
}

fn server(status: u16, retry_after: Option<u64>) -> Error {
    let s = ServerError {
        status,
        error: Some("e".into()),
        description: None,
        retry_after,
    };
    match status {
        401 | 403 => Error::AccessDenied(s),
        400 => Error::InvalidRequest(s),
        429 => Error::RateLimited(s),
        _ => Error::Server(s),
    }
}

#[test]
fn a_held_token_through_its_life() {
    let table = [
        (0, "Serve(t1, memory)"),
        (REFRESH_AT - 1, "Serve(t1, memory)"),
        (REFRESH_AT, "ServeAndRefresh(t1)"),
        (USABLE_UNTIL - 1, "ServeAndRefresh(t1)"),
        (USABLE_UNTIL, "Mint(t1)"),
        (LIFE_S * 1000, "Mint(t1)"),
    ];
    for (now, expected) in table {
        assert_eq!(want(&mut holding_t1(), now), expected, "at {now}");
    }
}

/// The minting lock's life with the default policy: two store calls (3 s each), the longest
/// mint (capped by the mint deadline, 30 s, plus half the grace), and the grace (2 s).
const LOCK_TTL: u64 = 39_000;

#[test]
fn the_lock_lives_longer_than_the_longest_mint_it_guards() {
    let p = Policy::default();
    assert_eq!(p.longest_mint_ms(), 31_000);
    assert_eq!(p.lock_ttl_ms(), LOCK_TTL);
    // short timeouts make a short lock: three attempts of 1 s (+1 s bound), two capped waits
    let quick = Policy {
        request_timeout_ms: 1_000,
        store_timeout_ms: 500,
        ..Policy::default()
    };
    assert_eq!(quick.longest_mint_ms(), 3 * 2_000 + 250 + 500);
    assert_eq!(quick.lock_ttl_ms(), 1_000 + 6_750 + 2_000);
}

#[test]
fn the_slowest_flight_ends_inside_its_lock_without_claiming_it_again() {
    // every I/O takes its whole bound: the claim and the double check (a store timeout each),
    // then every attempt times out at its bound, with the longest waits between them
    let p = Policy::default();
    let (mut m, mut c) = store_missed();
    assert_eq!(
        show(&m.claimed(p.store_timeout_ms, &mut c, Ok(true))),
        "ReadStore(fleet=true)"
    );
    let mut now = 2 * p.store_timeout_ms;
    let mut action = m.stored(now, &mut c, Ok(None));
    let mut attempts = 0;
    let last = loop {
        action = match action {
            Action::Mint { .. } => {
                attempts += 1;
                now += p.mint_bound_ms();
                let slow = Error::Timeout {
                    host: "h".into(),
                    after_ms: p.request_timeout_ms,
                };
                m.minted(now, &mut c, Err(slow))
            }
            Action::WaitUntil(t) => {
                now = t;
                m.want(now, &mut c)
            }
            Action::Save { .. } => {
                now += p.store_timeout_ms;
                m.saved(now, &mut c, &[Ok(())])
            }
            other => break show(&other),
        };
    };
    // the lock's life covers it all: no attempt needed the lock claimed again
    assert_eq!(last, "Unlock");
    assert!(attempts >= 2, "{attempts} attempts");
    assert!(now <= LOCK_TTL, "done at {now} ms, the lock lives {LOCK_TTL} ms");
}

#[test]
fn with_a_store_a_caller_without_a_usable_token_reads_it_first() {
    assert_eq!(want(&mut machine(true), 0), "ReadStore(fleet=true)");
    let table: [(Result<Option<TokenRecord>, StoreError>, &str); 3] = [
        (Ok(Some(token("s1", 0))), "Serve(s1, kv)"),
        (Ok(None), "ClaimLock(39000)"),
        // the store cannot be reached: a blip is not an outage, so it is tried again first
        // (after storeWaitMs the outage rule decides: by default this instance mints alone)
        (Err(StoreError("down".into())), "WaitUntil(501)"),
    ];
    for (read, expected) in table {
        let mut m = machine(true);
        let mut c = Call::new(Want::Usable);
        m.want(0, &mut c);
        assert_eq!(show(&m.stored(1, &mut c, read)), expected);
    }
}

#[test]
fn a_stored_record_is_taken_only_while_usable_and_never_if_refused() {
    let table = [
        (REFRESH_AT - 1, false, "Serve(s1, kv)"),
        (USABLE_UNTIL - 1, false, "ServeAndRefresh(s1)"),
        (USABLE_UNTIL, false, "ClaimLock(39000)"),
        (0, true, "ClaimLock(39000)"),
    ];
    for (now, refused, expected) in table {
        let mut m = machine(true);
        if refused {
            m.refused(now, "s1");
        }
        let mut c = Call::new(Want::Usable);
        assert_eq!(show(&m.want(now, &mut c)), "ReadStore(fleet=true)");
        assert_eq!(
            show(&m.stored(now, &mut c, Ok(Some(token("s1", 0))))),
            expected,
            "at {now}"
        );
    }
}

#[test]
fn the_minting_lock_decides_who_rereads_who_mints_and_who_polls() {
    let table: [(Result<bool, StoreError>, &str); 3] = [
        // the winner reads the store again before minting (double-checked locking)
        (Ok(true), "ReadStore(fleet=true)"),
        (Ok(false), "WaitUntil(50)"),
        (Err(StoreError("busy".into())), "WaitUntil(50)"),
    ];
    for (claim, expected) in table {
        let (mut m, mut c) = store_missed();
        assert_eq!(show(&m.claimed(0, &mut c, claim)), expected);
    }
}

#[test]
fn a_lock_loser_polls_and_claims_again_doubling_and_never_mints_without_the_lock() {
    let (mut m, mut c) = store_missed();
    assert_eq!(show(&m.claimed(0, &mut c, Ok(false))), "WaitUntil(50)");
    assert_eq!(show(&m.want(49, &mut c)), "WaitUntil(50)", "woken early: wait on");
    let mut now = 50;
    let mut waits = vec![];
    let last = loop {
        assert_eq!(show(&m.want(now, &mut c)), "ReadStore(fleet=true)");
        assert_eq!(
            show(&m.stored(now, &mut c, Ok(None))),
            "ClaimLock(39000)",
            "at {now}"
        );
        match m.claimed(now, &mut c, Ok(false)) {
            Action::WaitUntil(t) => {
                waits.push(t - now);
                now = t;
            }
            other => break show(&other),
        }
    };
    assert_eq!(&waits[..4], [100, 200, 400, 500]);
    assert!(waits[4..].iter().all(|w| *w <= 500));
    // the lock outlived its whole life (a foreign or broken lock): a typed error, not a mint
    assert_eq!(last, "Fail(store_unavailable)");
    let give_up = LOCK_TTL + MINT_LOCK_GRACE_MS;
    assert!((give_up..give_up + 500).contains(&now), "gave up at {now}");
    assert_eq!(m.stats().mints, 0);
}

#[test]
fn a_failing_claim_is_tried_once_more_after_a_pause_then_the_outage_rule_decides() {
    let (mut m, mut c) = store_missed();
    let down = || Err(StoreError("down".into()));
    assert_eq!(show(&m.claimed(0, &mut c, down())), "WaitUntil(50)");
    assert_eq!(show(&m.want(50, &mut c)), "ClaimLock(39000)");
    // the outage rule: the store is tried again for storeWaitMs, then (by default) this
    // instance mints alone
    assert_eq!(show(&m.claimed(50, &mut c, down())), "WaitUntil(550)");
    let mut now = 550;
    let mut action = m.want(now, &mut c);
    let last = loop {
        action = match action {
            Action::ReadStore { .. } => m.stored(now, &mut c, Err::<StoreRead, _>(StoreError("down".into()))),
            Action::WaitUntil(t) => {
                now = t;
                m.want(now, &mut c)
            }
            other => break show(&other),
        };
    };
    assert_eq!(last, "Mint(-)");
    assert_eq!(now, 50 + DEFAULT_STORE_WAIT_MS, "after storeWaitMs");
}

#[test]
fn a_minted_token_is_saved_with_its_remaining_life_then_the_lock_freed_then_served() {
    let (mut m, mut c) = store_missed();
    assert_eq!(show(&m.claimed(0, &mut c, Ok(true))), "ReadStore(fleet=true)");
    assert_eq!(show(&m.stored(0, &mut c, Ok(None))), "Mint(-)");
    assert_eq!(
        show(&m.minted(2_000, &mut c, Ok(token("t1", 0)))),
        "Save(98, fleet=window)"
    );
    assert_eq!(show(&m.saved(2_000, &mut c, &[Ok(()), Ok(())])), "Unlock");
    assert_eq!(show(&m.saved(2_000, &mut c, &[Ok(())])), "Serve(t1, network)");
    // a write that failed keeps the lock (it expires by itself): the waiters do not come in
    let (mut m, mut c) = store_missed();
    m.claimed(0, &mut c, Ok(true));
    m.stored(0, &mut c, Ok(None));
    m.minted(2_000, &mut c, Ok(token("t1", 0)));
    assert_eq!(
        show(&m.saved(2_000, &mut c, &[Ok(()), Err(StoreError("x".into()))])),
        "Serve(t1, network)"
    );
    assert_eq!(m.stats().kv_errors, 1);
    // a token too short to store (under 60 s left) is kept in memory only; the budget window
    // is still written for the fleet
    let (mut m, mut c) = store_missed();
    m.claimed(0, &mut c, Ok(true));
    m.stored(0, &mut c, Ok(None));
    assert_eq!(
        show(&m.minted(41_000, &mut c, Ok(token("t1", 0)))),
        "Save(0, fleet=window)"
    );
    assert_eq!(show(&m.saved(41_000, &mut c, &[Ok(())])), "Serve(t1, network)");
}

#[test]
fn callers_without_a_token_wait_for_the_one_flight_and_share_its_outcome() {
    for (outcome, expected) in [
        (Ok(token("t1", 0)), "Serve(t1, network)"),
        (Err(server(401, None)), "Fail(access_denied)"),
    ] {
        let mut m = machine(false);
        let mut owner = Call::new(Want::Usable);
        let mut waiter = Call::new(Want::Usable);
        assert_eq!(show(&m.want(0, &mut owner)), "Mint(-)");
        assert_eq!(show(&m.want(5, &mut waiter)), format!("WaitUntil({BOUND})"));
        let ended = m.minted(10, &mut owner, outcome);
        assert!(m.take_landed(), "the driver is told to wake the waiters");
        assert_eq!(show(&ended), expected);
        assert_eq!(show(&m.want(10, &mut waiter)), expected);
    }
}

#[test]
fn a_flight_past_its_deadline_is_dead_and_the_next_caller_starts_anew() {
    let table = [
        (BOUND - 1, format!("WaitUntil({BOUND})")),
        (BOUND, "Mint(-)".to_owned()),
    ];
    for (now, expected) in table {
        let mut m = machine(false);
        m.want(0, &mut Call::new(Want::Usable));
        assert_eq!(want(&mut m, now), expected, "at {now}");
    }
    // the dead flight's late answer is still a good token: kept, and served to its caller
    let mut m = machine(false);
    let mut late = Call::new(Want::Usable);
    m.want(0, &mut late);
    let mut next = Call::new(Want::Usable);
    assert_eq!(show(&m.want(BOUND, &mut next)), "Mint(-)");
    assert_eq!(
        show(&m.minted(BOUND + 1, &mut late, Ok(token("late", 1)))),
        "Serve(late, network)"
    );
}

#[test]
fn a_stale_token_starts_one_refresh_and_is_served_meanwhile() {
    let started = USABLE_UNTIL - 5_000;
    let mut m = holding_t1();
    let Action::ServeAndRefresh(_, mut refresh) = m.want(started, &mut Call::new(Want::Usable)) else {
        panic!("stale: refresh");
    };
    assert_eq!(
        want(&mut m, started),
        "Serve(t1, memory)",
        "one refresh at a time"
    );
    assert_eq!(show(&m.want(started, &mut refresh)), "Mint(t1)");
    // past its usable life while the refresh runs: wait for the refresh, no second mint
    assert_eq!(
        want(&mut m, USABLE_UNTIL),
        format!("WaitUntil({})", started + BOUND)
    );
    let minted = m.minted(USABLE_UNTIL + 1, &mut refresh, Ok(token("t2", started)));
    assert_eq!(show(&minted), "Serve(t2, network)");
    assert_eq!(want(&mut m, USABLE_UNTIL + 2), "Serve(t2, memory)");
}

#[test]
fn a_failed_refresh_backs_off_doubling_or_as_told_and_serves_the_held_token() {
    // (retry-after from the server, failures so far) → when the next refresh may start
    let table = [
        (None, 1, 1_000),
        (None, 2, 2_000),
        (None, 3, 4_000),
        (Some(10), 1, 10_000),
    ];
    for (retry_after, failures, backoff) in table {
        let mut m = holding_t1();
        let mut now = REFRESH_AT;
        for _ in 0..failures {
            let Action::ServeAndRefresh(_, mut r) = m.want(now, &mut Call::new(Want::Usable)) else {
                panic!("refresh at {now}");
            };
            m.want(now, &mut r);
            let ended = m.minted(
                now,
                &mut r,
                Err(server(if retry_after.is_some() { 429 } else { 503 }, retry_after)),
            );
            assert_eq!(show(&ended), "Serve(t1, network)", "stale-if-error");
            now += refresh_backoff_ms(m.stats().failures as u32, retry_after);
        }
        let failed_at = now - backoff;
        assert_eq!(
            want(&mut m, failed_at + backoff - 1),
            "Serve(t1, memory)",
            "{retry_after:?} x{failures}"
        );
        assert_eq!(
            want(&mut m, failed_at + backoff),
            "ServeAndRefresh(t1)",
            "{retry_after:?} x{failures}"
        );
    }
}

#[test]
fn an_authority_renews_a_held_token_once_unless_it_has_a_newer_one() {
    let held = || Call::new(Want::Replacing("t1".into()));
    let other = || Call::new(Want::Replacing("t0".into()));
    let mut m = holding_t1();
    assert_eq!(show(&m.want(1, &mut other())), "Serve(t1, memory)");
    let mut c = held();
    assert_eq!(show(&m.want(1, &mut c)), "Mint(t1)");
    // the source hands back the same token: nothing renewed, backoff, and no loop
    assert_eq!(
        show(&m.minted(2, &mut c, Ok(token("t1", 0)))),
        "Serve(t1, network)"
    );
    assert_eq!(show(&m.want(3, &mut held())), "Serve(t1, memory)", "backing off");
    assert_eq!(
        show(&m.want(2 + 1_000, &mut held())),
        "Mint(t1)",
        "after the backoff"
    );
    // a failed renewal while the held token is usable serves it again
    let mut m = holding_t1();
    let mut c = held();
    m.want(1, &mut c);
    assert_eq!(
        show(&m.minted(2, &mut c, Err(server(503, None)))),
        "Serve(t1, network)"
    );
}

#[test]
fn a_refused_token_is_replaced_and_named_to_the_source() {
    let mut m = holding_t1();
    assert_eq!(m.refused(1, "t1"), Refusal::Dropped);
    assert_eq!(
        m.refused(1, "t0"),
        Refusal::NotHeld,
        "compare-and-delete: t0 was not held"
    );
    assert_eq!(want(&mut m, 2), "Mint(t0)", "the last refused token is named");
    let mut m = holding_t1();
    m.invalidate(1);
    assert_eq!(want(&mut m, 2), "Mint(t1)");
}

#[test]
fn a_token_already_past_its_usable_life_on_arrival_is_refused() {
    let mut m = machine(false);
    let mut c = Call::new(Want::Usable);
    m.want(USABLE_UNTIL, &mut c);
    assert_eq!(
        show(&m.minted(USABLE_UNTIL, &mut c, Ok(token("old", 0)))),
        "Fail(invalid_response)"
    );
    assert!(m.current(USABLE_UNTIL).is_none());
}

#[test]
fn the_lease_and_the_next_deadline_follow_the_timeline() {
    let m = holding_t1();
    assert_eq!(
        m.lease(0).map(|(r, until)| (r.access_token.clone(), until)),
        Some(("t1".into(), REFRESH_AT))
    );
    assert!(m.lease(REFRESH_AT).is_none());
    let table = [
        (0, Some(REFRESH_AT)),
        (REFRESH_AT, Some(USABLE_UNTIL)),
        (USABLE_UNTIL, None),
    ];
    for (now, next) in table {
        assert_eq!(m.next_deadline(now), next, "at {now}");
    }
    let mut m = machine(false);
    m.want(5, &mut Call::new(Want::Usable));
    assert_eq!(m.next_deadline(5), Some(5 + BOUND), "a flight's deadline");
}

// ---- faults: retries, cooldowns, holds, the mint budget (fail closed on minting) ----

/// A cold call (no store) whose first token request failed with `e`: what the owner is told.
fn first_attempt_fails(e: Error) -> (Machine, Call, String) {
    let mut m = machine(false);
    let mut c = Call::new(Want::Usable);
    assert_eq!(show(&m.want(0, &mut c)), "Mint(-)");
    let next = show(&m.minted(100, &mut c, Err(e)));
    (m, c, next)
}

#[test]
fn which_faults_are_retried_inside_the_mint() {
    let table = [
        (server(500, None), true),
        (server(503, None), true),
        (network(), true),
        (
            Error::Timeout {
                host: "h".into(),
                after_ms: 10_000,
            },
            true,
        ),
        (server(503, Some(5)), false),
        (server(429, None), false),
        (server(401, None), false),
        (server(403, None), false),
        (server(400, None), false),
        (
            Error::InvalidResponse {
                status: 200,
                reason: "bad".into(),
            },
            false,
        ),
    ];
    for (e, retried) in table {
        let code = e.code();
        let (_, _, next) = first_attempt_fails(e);
        assert_eq!(next.starts_with("WaitUntil("), retried, "{code}: {next}");
    }
}

#[test]
fn retries_wait_with_full_jitter_and_stop_at_three_attempts() {
    let (mut m, mut c, next) = first_attempt_fails(server(503, None));
    let first_wait: u64 = next["WaitUntil(".len()..next.len() - 1].parse().unwrap();
    assert!(
        (100..=350).contains(&first_wait),
        "≤ 250 ms after the failure: {first_wait}"
    );
    assert_eq!(show(&m.want(first_wait, &mut c)), "Mint(-)", "attempt 2");
    let Action::WaitUntil(at) = m.minted(first_wait, &mut c, Err(server(503, None))) else {
        panic!("attempt 3 is scheduled");
    };
    assert!(at - first_wait <= 500, "≤ 500 ms: {}", at - first_wait);
    assert_eq!(show(&m.want(at, &mut c)), "Mint(-)", "attempt 3");
    assert_eq!(
        show(&m.minted(at, &mut c, Err(server(503, None)))),
        "Fail(server_error)",
        "no attempt 4"
    );
    for (retry, cap) in [(1, 250), (2, 500), (3, 1_000), (9, 4_000)] {
        assert_eq!(
            Policy::default().retry_wait(retry, 0.999_999_9),
            cap - 1,
            "retry {retry}"
        );
        assert_eq!(Policy::default().retry_wait(retry, 0.0), 0);
    }
}

#[test]
fn a_retry_that_could_not_end_within_the_mint_deadline_is_not_made() {
    let timeout = || Error::Timeout {
        host: "h".into(),
        after_ms: 10_000,
    };
    let mut m = machine(false);
    let mut c = Call::new(Want::Usable);
    m.want(0, &mut c);
    let Action::WaitUntil(at) = m.minted(10_000, &mut c, Err(timeout())) else {
        panic!("one timeout leaves time for another attempt");
    };
    m.want(at, &mut c);
    // a second 10 s timeout: a third attempt would end past 30 s
    assert_eq!(
        show(&m.minted(at + 10_000, &mut c, Err(timeout()))),
        "Fail(timeout)"
    );
}

#[test]
fn a_rate_limit_is_a_cooldown_no_request_reaches_the_endpoint_before_it_ends() {
    // (Retry-After, cooldown): the header, capped at 10 min; 30 s without one
    let table = [
        (Some(3), 3_000),
        (Some(120), 120_000),
        (Some(86_400), 600_000),
        (None, 30_000),
    ];
    for (retry_after, cooldown) in table {
        let (mut m, _, next) = first_attempt_fails(server(429, retry_after));
        assert_eq!(next, "Fail(rate_limited)");
        let Action::Fail(e) = m.want(100 + cooldown - 1_500, &mut Call::new(Want::Usable)) else {
            panic!("cooling down");
        };
        assert_eq!(
            (e.code(), e.retry_after()),
            ("rate_limited", Some(2)),
            "the seconds left, {retry_after:?}"
        );
        assert_eq!(want(&mut m, 100 + cooldown - 1), "Fail(rate_limited)");
        assert_eq!(want(&mut m, 100 + cooldown), "Mint(-)", "{retry_after:?}");
    }
    // a 503 with Retry-After is a cooldown too; a usable token is served through it
    let mut m = holding_t1();
    let Action::ServeAndRefresh(_, mut r) = m.want(REFRESH_AT, &mut Call::new(Want::Usable)) else {
        panic!()
    };
    m.want(REFRESH_AT, &mut r);
    m.minted(REFRESH_AT, &mut r, Err(server(503, Some(10))));
    assert_eq!(
        want(&mut m, REFRESH_AT + 9_999),
        "Serve(t1, memory)",
        "no refresh in the cooldown"
    );
    assert_eq!(want(&mut m, REFRESH_AT + 10_000), "ServeAndRefresh(t1)");
}

#[test]
fn a_refusal_is_held_growing_on_repeats_and_invalidate_clears_it() {
    for status in [401, 403, 400] {
        let (mut m, _, next) = first_attempt_fails(server(status, None));
        assert!(next.starts_with("Fail("), "{next}");
        let mut failed_at = 100;
        for hold in [30_000, 60_000, 120_000, 240_000, 480_000, 600_000, 600_000] {
            assert_eq!(
                show(&m.want(failed_at + hold - 1, &mut Call::new(Want::Usable))),
                next,
                "held"
            );
            let mut c = Call::new(Want::Usable);
            assert_eq!(
                show(&m.want(failed_at + hold, &mut c)),
                "Mint(-)",
                "{status}: hold {hold} ended"
            );
            failed_at += hold;
            m.minted(failed_at, &mut c, Err(server(status, None)));
        }
        m.invalidate(failed_at + 1);
        assert_eq!(
            want(&mut m, failed_at + 1),
            "Mint(-)",
            "invalidate clears the hold"
        );
    }
}

#[test]
fn a_refused_fresh_token_is_replaced_once_then_held() {
    let mut m = machine(false);
    let mint = |m: &mut Machine, now: u64, name: &str| {
        let mut c = Call::new(Want::Usable);
        assert!(show(&m.want(now, &mut c)).starts_with("Mint("), "a mint at {now}");
        m.minted(now, &mut c, Ok(token(name, now)));
    };
    mint(&mut m, 0, "t1");
    assert_eq!(
        m.refused(10, "t1"),
        Refusal::Dropped,
        "refused moments after minting: replace once"
    );
    mint(&mut m, 20, "t2");
    assert_eq!(
        m.refused(30, "t2"),
        Refusal::Kept,
        "the replacement refused too: hold"
    );
    for now in [31, 1_000, 30_029] {
        assert_eq!(want(&mut m, now), "Serve(t2, memory)", "kept and used at {now}");
        assert_eq!(m.refused(now, "t2"), Refusal::Kept);
    }
    // the hold ends: one replacement is tried again; refused too, the hold doubles
    assert_eq!(m.refused(30_030, "t2"), Refusal::Dropped);
    mint(&mut m, 30_040, "t3");
    assert_eq!(m.refused(30_050, "t3"), Refusal::Kept);
    assert!(m.refusals_held(30_050 + 59_999) && !m.refusals_held(30_050 + 60_000));
    // a token refused after a long life is a plain revocation: replaced, no hold
    let mut m = holding_t1();
    assert_eq!(m.refused(70_000, "t1"), Refusal::Dropped);
}

#[test]
fn the_mint_budget_caps_token_requests_whatever_the_cause() {
    let policy = Policy::default();
    // before any token: the burst; after one: the burst plus twice what rotation needs
    assert_eq!(policy.mint_budget(None), 10);
    assert_eq!(policy.mint_budget(Some(86_400_000)), 10 + 1);
    assert_eq!(policy.mint_budget(Some(5_000)), 10 + 2 * 3_600_000 / 3_500 + 1);
    // day-long tokens that a bug invalidates after each call: the twelfth request is refused
    let mut m = machine(false);
    let mut now = 0;
    for i in 0..11 {
        let mut c = Call::new(Want::Usable);
        assert!(show(&m.want(now, &mut c)).starts_with("Mint("), "request {i}");
        let rec = TokenRecord {
            expires_at_ms: now + 86_400_000,
            ..token(&format!("t{i}"), now)
        };
        m.minted(now, &mut c, Ok(rec));
        m.invalidate(now);
        now += 1_000;
    }
    let Action::Fail(e) = m.want(now, &mut Call::new(Want::Usable)) else {
        panic!("over budget")
    };
    assert_eq!(e.code(), "mint_budget_exhausted");
    // the oldest request leaves the window an hour after it was sent
    assert_eq!(e.retry_after(), Some(3_600 - 11));
    assert_eq!(want(&mut m, 3_600_000 - 1), "Fail(mint_budget_exhausted)");
    assert_eq!(
        m.stats().budget_refusals,
        1,
        "refused once, then a cooldown: no flight per caller"
    );
    assert_eq!(want(&mut m, 3_600_000), "Mint(t10)");
}

#[test]
fn normal_rotation_never_touches_the_budget() {
    // 5 s tokens refreshed by every stale call for two simulated hours, with every jitter
    for jitter in [-1.0, 0.0, 1.0] {
        let mut m = Machine::new(Policy::default(), jitter, false).unwrap();
        let mut now = 0;
        let mut minted = 0;
        while now < 7_200_000 {
            let mut c = Call::new(Want::Usable);
            let mut action = m.want(now, &mut c);
            loop {
                action = match action {
                    Action::Mint { .. } => {
                        minted += 1;
                        let name = format!("t{minted}");
                        let rec = TokenRecord {
                            expires_at_ms: now + 5_000,
                            ..token(&name, now)
                        };
                        m.minted(now, &mut c, Ok(rec))
                    }
                    Action::ServeAndRefresh(_, mut r) => {
                        let next = m.want(now, &mut r);
                        c = r;
                        next
                    }
                    Action::Fail(e) => panic!("{e} at {now}"),
                    _ => break,
                };
            }
            now += 100;
        }
        assert!(
            minted >= 1_800,
            "rotated {minted} times, never refused by the budget"
        );
    }
}

#[test]
fn the_budget_window_survives_a_restart_when_the_host_keeps_it() {
    // a bug mints 11 day-long tokens, then the process restarts
    let mut before = machine(false);
    for i in 0..11 {
        let mut c = Call::new(Want::Usable);
        assert!(show(&before.want(i * 1_000, &mut c)).starts_with("Mint("));
        let rec = TokenRecord {
            expires_at_ms: i * 1_000 + 86_400_000,
            ..token(&format!("t{i}"), i * 1_000)
        };
        before.minted(i * 1_000, &mut c, Ok(rec));
        before.invalidate(i * 1_000);
    }
    let kept = before.budget_window();
    assert_eq!((kept.sent.len(), kept.lifetime_ms), (11, Some(86_400_000)));
    // a fresh machine that is handed the window refuses the twelfth request
    let mut after = machine(false);
    after.restore_budget_window(&kept);
    assert_eq!(after.budget_use(11_000), (11, 11));
    assert_eq!(want(&mut after, 11_000), "Fail(mint_budget_exhausted)");
    // one that is not would have minted
    assert_eq!(want(&mut machine(false), 11_000), "Mint(-)");
}

#[test]
fn each_store_is_asked_only_what_it_can_do() {
    // a store that writes but cannot lock (Workers KV, a Durable Object's storage): a miss
    // mints at once — no claim is sent — and the token and the fleet state are written
    let mut m = Machine::new(Policy::default(), 0.0, Shared::ReadWrite).unwrap();
    let mut c = Call::new(Want::Usable);
    assert_eq!(show(&m.want(0, &mut c)), "ReadStore(fleet=true)");
    assert_eq!(show(&m.stored(0, &mut c, Ok(None))), "Mint(-)");
    assert_eq!(
        show(&m.minted(0, &mut c, Ok(token("t1", 0)))),
        "Save(100, fleet=window)"
    );
    assert_eq!(show(&m.saved(0, &mut c, &[Ok(()), Ok(())])), "Serve(t1, network)");
    // a refusal and an invalidation are compare-and-delete and delete, for it to carry out
    m.refused(1, "t1");
    m.invalidate(2);
    let refused = StoreOp::DeleteIf { token: "t1".into() };
    assert_eq!(m.take_store_ops(), [refused, StoreOp::Delete]);
    assert!(m.take_store_ops().is_empty());

    // its failing read is an outage, for the outage rule to decide after storeWaitMs (by
    // default: mint alone)
    let mut m = Machine::new(Policy::default(), 0.0, Shared::ReadWrite).unwrap();
    let mut c = Call::new(Want::Usable);
    m.want(0, &mut c);
    let down = || Err::<StoreRead, _>(StoreError("down".into()));
    assert_eq!(show(&m.stored(0, &mut c, down())), "WaitUntil(500)");
    m.want(DEFAULT_STORE_WAIT_MS, &mut c);
    assert_eq!(show(&m.stored(DEFAULT_STORE_WAIT_MS, &mut c, down())), "Mint(-)");
    let kinds: Vec<_> = m.take_events().iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::StoreError,
            EventKind::StoreError,
            EventKind::StoreOutage
        ]
    );

    // a read-only view (in front of a minting authority): reads, never a write or a delete
    let mut m = Machine::new(Policy::default(), 0.0, Shared::ReadOnly).unwrap();
    let mut c = Call::new(Want::Usable);
    assert_eq!(show(&m.want(0, &mut c)), "ReadStore(fleet=false)");
    assert_eq!(show(&m.stored(0, &mut c, Ok(None))), "Mint(-)");
    assert_eq!(
        show(&m.minted(0, &mut c, Ok(token("t1", 0)))),
        "Serve(t1, network)"
    );
    m.refused(1, "t1");
    m.invalidate(2);
    assert!(m.take_store_ops().is_empty());

    // memory only: no store action at all
    let mut m = machine(false);
    let mut c = Call::new(Want::Usable);
    assert_eq!(show(&m.want(0, &mut c)), "Mint(-)");
}
