//! The fleet's lock protocol, one interleaving a row: instances sharing a store that can lock
//! (Redis `SET NX PX`, Deno KV `check`), the store's answers given by hand. Each row is a race
//! that minted twice (or minted on a timer, or let a 429 reach the endpoint again) before the
//! protocol was double-checked.
mod support;
use autopay_auth::*;
use support::record;

const LIFE_S: u64 = 100;

fn token(name: &str, issued: u64) -> TokenRecord {
    record(name, issued, LIFE_S)
}

/// The token endpoint unavailable for a moment (503, no `Retry-After`): a fault worth a retry.
fn busy() -> Error {
    Error::Server(ServerError {
        status: 503,
        error: None,
        description: None,
        retry_after: None,
    })
}

fn machine(policy: Policy) -> Machine {
    Machine::new(policy, 0.0, Shared::Locking).unwrap()
}

fn show(a: &Action) -> String {
    match a {
        Action::Serve(s) => format!("Serve({}, {})", s.record.access_token, s.source.as_str()),
        Action::ServeAndRefresh(s, _) => format!("ServeAndRefresh({})", s.record.access_token),
        Action::ReadStore { .. } => "ReadStore".into(),
        Action::ClaimLock { .. } => "ClaimLock".into(),
        Action::Mint { replacing } => format!("Mint({})", replacing.as_deref().unwrap_or("-")),
        Action::Save { record, fleet } => format!(
            "Save({}, {})",
            record
                .as_ref()
                .map_or("-".into(), |(r, _)| r.access_token.clone()),
            match fleet {
                None => "-".into(),
                Some((f, _)) => f.gate.as_ref().map_or("open".into(), |g| format!("{:?}", g.kind)),
            }
        ),
        Action::Unlock => "Unlock".into(),
        Action::WaitUntil(t) => format!("WaitUntil({t})"),
        Action::Fail(e) => format!("Fail({})", e.code()),
    }
}

/// A cold call whose first read missed and whose claim of the lock succeeded.
fn holding_the_lock(m: &mut Machine, now: u64) -> Call {
    let mut c = Call::new(Want::Usable);
    assert_eq!(show(&m.want(now, &mut c)), "ReadStore");
    assert_eq!(show(&m.stored(now, &mut c, Ok(None))), "ClaimLock");
    assert_eq!(
        show(&m.claimed(now, &mut c, Ok(true))),
        "ReadStore",
        "the double check"
    );
    c
}

fn fleet(gate: Option<Gate>, sent: Vec<u64>) -> StoreRead {
    StoreRead {
        record: None,
        fleet: Some(FleetState {
            sent,
            lifetime_ms: Some(86_400_000),
            gate,
            declared: Vec::new(),
        }),
        fleet_error: None,
    }
}

fn access_denied() -> Error {
    Error::AccessDenied(ServerError {
        status: 401,
        error: Some("access_denied".into()),
        description: Some("Unauthorized".into()),
        retry_after: None,
    })
}

fn rate_limited(retry_after: u64) -> Error {
    Error::RateLimited(ServerError {
        status: 429,
        error: Some("too_many_requests".into()),
        description: None,
        retry_after: Some(retry_after),
    })
}

#[test]
fn the_lock_winner_takes_a_token_saved_after_its_first_read_and_does_not_mint() {
    // B read the store before A saved; B's claim lands after A released the lock
    let mut b = machine(Policy::default());
    let mut c = holding_the_lock(&mut b, 10);
    let read = b.stored(10, &mut c, Ok(Some(token("from-a", 5))));
    assert_eq!(show(&read), "Unlock", "took A's token, frees the lock");
    assert_eq!(show(&b.saved(10, &mut c, &[Ok(())])), "Serve(from-a, kv)");
    assert_eq!(b.stats().mints, 0);
}

#[test]
fn a_refresh_under_the_lock_adopts_a_newer_record_even_if_it_is_already_stale() {
    let mut m = machine(Policy::default());
    let mut c = holding_the_lock(&mut m, 0);
    m.stored(0, &mut c, Ok(None));
    m.minted(0, &mut c, Ok(token("t1", 0)));
    m.saved(0, &mut c, &[Ok(()), Ok(())]);
    m.saved(0, &mut c, &[Ok(())]);
    // t1 is stale at 76.5 s; another instance renewed at 1 s (its t2 is stale a little later,
    // but newer than t1): the refresh takes t2 instead of minting
    let Action::ServeAndRefresh(_, mut r) = m.want(76_500, &mut Call::new(Want::Usable)) else {
        panic!("a refresh")
    };
    assert_eq!(show(&m.want(76_500, &mut r)), "ReadStore");
    assert_eq!(
        show(&m.stored(76_500, &mut r, Ok(Some(token("t1", 0))))),
        "ClaimLock"
    );
    assert_eq!(show(&m.claimed(76_500, &mut r, Ok(true))), "ReadStore");
    assert_eq!(
        show(&m.stored(76_500, &mut r, Ok(Some(token("t2", 1_000))))),
        "Unlock"
    );
    m.saved(76_500, &mut r, &[Ok(())]);
    assert_eq!(m.current(76_500).unwrap().1.access_token, "t2");
    assert_eq!(m.stats().mints, 1, "only t1 was minted here");
}

#[test]
fn a_waiter_whose_holder_died_claims_the_lock_again_and_mints_once() {
    let mut m = machine(Policy::default());
    let mut c = Call::new(Want::Usable);
    m.want(0, &mut c);
    m.stored(0, &mut c, Ok(None));
    let mut now = 0;
    let mut mints = 0;
    // the holder died: its lock lives on until 39 s; then this waiter's claim succeeds
    let mut action = m.claimed(now, &mut c, Ok(false));
    loop {
        action = match action {
            Action::WaitUntil(t) => {
                now = t;
                m.want(now, &mut c)
            }
            Action::ReadStore { .. } => m.stored(now, &mut c, Ok(None)),
            Action::ClaimLock { .. } => m.claimed(now, &mut c, Ok(now >= 39_000)),
            Action::Mint { .. } => {
                mints += 1;
                assert!(now >= 39_000, "minted at {now} while the lock was held");
                m.minted(now, &mut c, Ok(token("t1", now)))
            }
            Action::Save { .. } | Action::Unlock => m.saved(now, &mut c, &[Ok(()), Ok(())]),
            Action::Serve(s) => {
                assert_eq!(s.record.access_token, "t1");
                break;
            }
            other => panic!("{}", show(&other)),
        };
    }
    assert_eq!(mints, 1);
}

#[test]
fn a_holder_whose_write_failed_keeps_the_lock_so_nobody_else_mints() {
    let mut m = machine(Policy::default());
    let mut c = holding_the_lock(&mut m, 0);
    assert_eq!(show(&m.stored(0, &mut c, Ok(None))), "Mint(-)");
    assert_eq!(show(&m.minted(0, &mut c, Ok(token("t1", 0)))), "Save(t1, open)");
    let after = m.saved(0, &mut c, &[Err(StoreError("put failed".into())), Ok(())]);
    assert_eq!(show(&after), "Serve(t1, network)", "served, and no Unlock");
}

#[test]
fn a_failure_under_the_lock_is_written_for_the_fleet_before_the_lock_is_freed() {
    let table: [(Error, &str, &str); 3] = [
        (rate_limited(30), "Save(-, Cooldown)", "Fail(rate_limited)"),
        (access_denied(), "Save(-, Hold)", "Fail(access_denied)"),
        (
            Error::InvalidResponse {
                status: 200,
                reason: "r".into(),
            },
            "Save(-, Hold)",
            "Fail(invalid_response)",
        ),
    ];
    for (error, save, fail) in table {
        let mut m = machine(Policy::default());
        let mut c = holding_the_lock(&mut m, 0);
        m.stored(0, &mut c, Ok(None));
        assert_eq!(show(&m.minted(0, &mut c, Err(error))), save);
        assert_eq!(show(&m.saved(0, &mut c, &[Ok(())])), "Unlock");
        assert_eq!(show(&m.saved(0, &mut c, &[Ok(())])), fail);
    }
}

#[test]
fn a_gate_read_from_the_store_answers_every_instance_without_a_token_request() {
    let gates = [
        (
            GateKind::Cooldown,
            rate_limited(30),
            "Fail(rate_limited)",
            Some(20),
        ),
        (
            GateKind::Backoff,
            Error::Server(ServerError {
                status: 503,
                error: None,
                description: None,
                retry_after: None,
            }),
            "Fail(server_error)",
            None,
        ),
        (GateKind::Hold, access_denied(), "Fail(access_denied)", None),
    ];
    for (kind, error, expected, retry_after) in gates {
        let mut m = machine(Policy::default());
        let gate = Gate {
            kind,
            until_ms: 30_000,
            repeats: 1,
            error,
        };
        let mut c = Call::new(Want::Usable);
        m.want(10_000, &mut c);
        let action = m.stored(10_000, &mut c, Ok(fleet(Some(gate), vec![0])));
        assert_eq!(show(&action), expected, "{kind:?}: no claim, no mint");
        if let (Action::Fail(e), Some(left)) = (&action, retry_after) {
            assert_eq!(
                e.retry_after(),
                Some(left),
                "the seconds left of the fleet's cooldown"
            );
        }
        // kept here too: a later caller reads the store (for a token someone else got), and
        // still asks nobody
        let mut c = Call::new(Want::Usable);
        m.want(20_000, &mut c);
        assert_eq!(show(&m.stored(20_000, &mut c, Ok(None))), expected);
        // once it has ended, the lock is tried again
        let mut c = Call::new(Want::Usable);
        m.want(30_000, &mut c);
        assert_eq!(show(&m.stored(30_000, &mut c, Ok(None))), "ClaimLock", "{kind:?}");
        assert_eq!(m.stats().mints, 0);
    }
}

#[test]
fn the_mint_budget_is_the_fleets() {
    // the fleet made 11 token requests for day-long tokens this hour: its budget (10 + 1)
    let mut m = machine(Policy::default());
    let mut c = Call::new(Want::Usable);
    m.want(100_000, &mut c);
    let sent: Vec<u64> = (0..11).map(|i| i * 1_000).collect();
    assert_eq!(
        show(&m.stored(100_000, &mut c, Ok(fleet(None, sent.clone())))),
        "ClaimLock"
    );
    assert_eq!(show(&m.claimed(100_000, &mut c, Ok(true))), "ReadStore");
    assert_eq!(
        show(&m.stored(100_000, &mut c, Ok(fleet(None, sent)))),
        "Save(-, Cooldown)",
        "refused, and the refusal is written for the fleet"
    );
    m.saved(100_000, &mut c, &[Ok(())]);
    assert_eq!(
        show(&m.saved(100_000, &mut c, &[Ok(())])),
        "Fail(mint_budget_exhausted)"
    );
    assert_eq!(
        m.budget_use(100_000),
        (11, 11),
        "the same request is not counted twice"
    );
}

/// Drives `c` from `now` against a store whose every read fails, until the machine asks for
/// something else: that action, shown, the time, and how many reads it made.
fn through_outage(m: &mut Machine, c: &mut Call, mut now: u64) -> (String, u64, u32) {
    let mut action = m.want(now, c);
    let mut reads = 0;
    loop {
        action = match action {
            Action::ReadStore { .. } => {
                reads += 1;
                m.stored(now, c, Err::<Option<TokenRecord>, _>(StoreError("down".into())))
            }
            Action::WaitUntil(t) => {
                now = t;
                m.want(now, c)
            }
            other => return (show(&other), now, reads),
        };
    }
}

#[test]
fn when_the_store_is_down_an_instance_mints_alone_once_per_lifetime_by_default() {
    let mut m = machine(Policy::default());
    // a blip is not an outage: the store is tried for storeWaitMs, then this instance mints
    let mut c = Call::new(Want::Usable);
    assert_eq!(
        through_outage(&mut m, &mut c, 0),
        ("Mint(-)".into(), DEFAULT_STORE_WAIT_MS, 11)
    );
    let t = DEFAULT_STORE_WAIT_MS;
    assert_eq!(
        show(&m.minted(t, &mut c, Ok(token("t1", t)))),
        "Save(t1, -)",
        "the record only: a token minted alone is not the fleet's to count"
    );
    // minted alone: the request is this instance's, so no fleet state is written for it
    assert_eq!(
        show(&m.saved(t, &mut c, &[Err(StoreError("down".into()))])),
        "Serve(t1, network)"
    );
    assert_eq!(m.budget_use(t).0, 1, "it counts here");
    // the token is lost (refused) while the store is still down: no second mint this lifetime
    assert_eq!(m.refused(50_000, "t1"), Refusal::Dropped);
    let mut c = Call::new(Want::Usable);
    let (action, ..) = through_outage(&mut m, &mut c, 50_000);
    assert_eq!(action, "Fail(store_unavailable)");
    // a rotation spacing (70 % of the 100 s lifetime) after the first: one more is allowed
    let mut c = Call::new(Want::Usable);
    let (action, ..) = through_outage(&mut m, &mut c, 75_000);
    assert_eq!(action, "Mint(t1)");
    let kinds: Vec<_> = m
        .take_events()
        .iter()
        .filter(|e| e.kind == EventKind::StoreOutage)
        .map(|e| e.detail.clone().unwrap())
        .collect();
    assert_eq!(kinds, ["mint", "fail", "mint"]);
}

#[test]
fn the_store_answering_within_store_wait_is_a_blip_and_nothing_is_minted_alone() {
    let mut m = machine(Policy::default());
    let mut c = Call::new(Want::Usable);
    m.want(0, &mut c);
    let down = Err::<Option<TokenRecord>, _>(StoreError("down".into()));
    assert_eq!(show(&m.stored(0, &mut c, down)), "WaitUntil(500)");
    assert_eq!(show(&m.want(500, &mut c)), "ReadStore");
    assert_eq!(
        show(&m.stored(500, &mut c, Ok(Some(token("s1", 0))))),
        "Serve(s1, kv)"
    );
    assert_eq!(m.stats().mints, 0);
}

#[test]
fn when_the_store_is_down_and_outages_fail_no_token_request_is_ever_made() {
    let policy = Policy {
        store_outage: StoreOutage::Fail,
        ..Policy::default()
    };
    let mut m = machine(policy);
    let mut c = Call::new(Want::Usable);
    let mut now = 0;
    let mut action = m.want(now, &mut c);
    let mut reads = 0;
    let last = loop {
        action = match action {
            Action::ReadStore { .. } => {
                reads += 1;
                m.stored(
                    now,
                    &mut c,
                    Err::<Option<TokenRecord>, _>(StoreError("down".into())),
                )
            }
            Action::WaitUntil(t) => {
                now = t;
                m.want(now, &mut c)
            }
            other => break show(&other),
        };
    };
    assert_eq!(last, "Fail(store_unavailable)");
    assert_eq!(now, DEFAULT_STORE_WAIT_MS, "tried for storeWaitMs");
    assert_eq!(reads, 11, "every 500 ms");
    assert_eq!(m.stats().mints, 0);
    // a store that answers again is used at once
    let mut c = Call::new(Want::Usable);
    m.want(6_000, &mut c);
    assert_eq!(
        show(&m.stored(6_000, &mut c, Ok(Some(token("s1", 5_000))))),
        "Serve(s1, kv)"
    );
}

#[test]
fn a_claim_answered_after_its_flight_was_declared_dead_frees_the_lock_at_once() {
    let mut m = machine(Policy::default());
    let mut c = Call::new(Want::Usable);
    m.want(0, &mut c);
    m.stored(0, &mut c, Ok(None));
    m.timeout(60_000);
    assert_eq!(show(&m.claimed(60_000, &mut c, Ok(true))), "Unlock");
}

#[test]
fn a_holder_whose_locks_life_passed_claims_again_before_any_token_request() {
    let policy = Policy::default();
    let ttl = policy.lock_ttl_ms();
    let mut m = machine(policy);
    let mut c = Call::new(Want::Usable);
    m.want(0, &mut c);
    assert_eq!(show(&m.stored(0, &mut c, Ok(None))), "ClaimLock");
    // a slow store: the claim and the double check each take nearly their whole bound…
    assert_eq!(show(&m.claimed(11_999, &mut c, Ok(true))), "ReadStore");
    assert_eq!(show(&m.stored(23_998, &mut c, Ok(None))), "Mint(-)");
    // …and a slow endpoint that fails: the retry would end past the lock's life
    let Action::WaitUntil(retry) = m.minted(34_998, &mut c, Err(busy())) else {
        panic!("a retry")
    };
    assert!(retry + Policy::default().mint_bound_ms() > ttl);
    assert_eq!(
        show(&m.want(retry, &mut c)),
        "ClaimLock",
        "no token request without claiming the lock again"
    );
    // another holds it now: this one waits for its token, and never mints beside it
    assert_eq!(
        show(&m.claimed(retry, &mut c, Ok(false))),
        format!("WaitUntil({})", retry + MINT_POLL_MIN_MS)
    );
}

#[test]
fn a_local_failure_stays_with_the_instance_and_spends_nothing_of_the_fleets() {
    let mut m = machine(Policy::default());
    let mut c = holding_the_lock(&mut m, 0);
    assert_eq!(show(&m.stored(0, &mut c, Ok(None))), "Mint(-)");
    assert_eq!(m.budget_use(0).0, 1);
    // no signer here, or a key the platform refuses: nothing was sent
    let local = Error::config(field::PRIVATE_KEY, "cannot be used here");
    assert_eq!(
        show(&m.minted(0, &mut c, Err(local))),
        "Unlock",
        "the lock is freed without writing a gate for the fleet"
    );
    assert_eq!(m.budget_use(0).0, 0, "the budget gets its request back");
    assert_eq!(show(&m.saved(0, &mut c, &[Ok(())])), "Fail(invalid_config)");
    let mut c = Call::new(Want::Usable);
    m.want(1, &mut c);
    assert_eq!(
        show(&m.stored(1, &mut c, Ok(None))),
        "Fail(invalid_config)",
        "this instance holds, before it claims the lock"
    );
}

#[test]
fn a_fleet_state_that_cannot_be_read_is_not_none() {
    let mut m = machine(Policy::default());
    let mut c = Call::new(Want::Usable);
    m.want(0, &mut c);
    let read = StoreRead {
        record: None,
        fleet: None,
        fleet_error: Some(StoreError("down".into())),
    };
    assert_eq!(
        show(&m.stored(0, &mut c, Ok(read))),
        "WaitUntil(500)",
        "the fleet's gate and budget are unknown: the store is tried again, no lock is claimed"
    );
    // a usable record is still taken: serving needs no fleet state
    let mut m = machine(Policy::default());
    let mut c = Call::new(Want::Usable);
    m.want(0, &mut c);
    let read = StoreRead {
        record: Some(token("s1", 0)),
        fleet: None,
        fleet_error: Some(StoreError("down".into())),
    };
    assert_eq!(show(&m.stored(0, &mut c, Ok(read))), "Serve(s1, kv)");
}

#[test]
fn a_late_error_to_a_flight_declared_dead_asks_again_instead_of_failing_the_caller() {
    let mut m = machine(Policy::default());
    let mut c = holding_the_lock(&mut m, 0);
    assert_eq!(show(&m.stored(0, &mut c, Ok(None))), "Mint(-)");
    // the process was paused past its flight's deadline and its lock's life; on resume, the
    // 503 it was sent meanwhile arrives
    let resumed = Policy::default().lock_ttl_ms() + 1;
    assert_eq!(
        show(&m.minted(resumed, &mut c, Err(busy()))),
        "Unlock",
        "its lock is released (fenced: deleted only if still its own)"
    );
    assert_eq!(
        show(&m.saved(resumed, &mut c, &[Ok(())])),
        "ReadStore",
        "the fleet may have a token by now: the caller asks again, it is not failed"
    );
}

#[test]
fn a_429_gives_the_budget_its_request_back_and_the_cooldown_paces_the_fleet() {
    let mut m = machine(Policy::default());
    let mut c = holding_the_lock(&mut m, 0);
    assert_eq!(show(&m.stored(0, &mut c, Ok(None))), "Mint(-)");
    assert_eq!(m.budget_use(0).0, 1);
    let limited = Error::RateLimited(ServerError {
        status: 429,
        error: None,
        description: None,
        retry_after: Some(60),
    });
    assert_eq!(
        show(&m.minted(0, &mut c, Err(limited))),
        "Save(-, Cooldown)",
        "the cooldown is the fleet's"
    );
    assert_eq!(
        m.budget_use(0).0,
        0,
        "the endpoint took nothing: a storm of 429s does not spend the budget"
    );
}

#[test]
fn on_a_store_that_cannot_lock_each_instance_keeps_its_own_budget() {
    // Workers KV: the instances cannot agree who mints, so pooling their budgets would only
    // refuse callers; the window another instance wrote, and its budget cooldown, are not taken
    let mut m = Machine::new(Policy::default(), 0.0, Shared::ReadWrite).unwrap();
    let mut c = Call::new(Want::Usable);
    m.want(100_000, &mut c);
    let spent = Gate {
        kind: GateKind::Cooldown,
        until_ms: 3_600_000,
        repeats: 1,
        error: Error::MintBudgetExhausted { retry_after: 3_500 },
    };
    let sent: Vec<u64> = (0..11).map(|i| i * 1_000).collect();
    assert_eq!(
        show(&m.stored(100_000, &mut c, Ok(fleet(Some(spent), sent)))),
        "Mint(-)"
    );
    assert_eq!(m.budget_use(100_000).0, 1, "its own request only");
    // a vendor's cooldown is still everyone's
    let mut m = Machine::new(Policy::default(), 0.0, Shared::ReadWrite).unwrap();
    let mut c = Call::new(Want::Usable);
    m.want(100_000, &mut c);
    let limited = Gate {
        kind: GateKind::Cooldown,
        until_ms: 160_000,
        repeats: 1,
        error: Error::RateLimited(ServerError {
            status: 429,
            error: None,
            description: None,
            retry_after: Some(60),
        }),
    };
    assert_eq!(
        show(&m.stored(100_000, &mut c, Ok(fleet(Some(limited), Vec::new())))),
        "Fail(rate_limited)"
    );
}
