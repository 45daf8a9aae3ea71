//! The fleet simulation, short: a few hundred instances of the real machine over simulated days,
//! a store 0–200 ms away, every fault at once, each scenario on several seeds. The long run
//! (1,000 instances × 30 days, fleets of 10 to 10,000) is `cargo bench --bench fleet`, which
//! `npm run bench` turns into BENCHMARKS.md.
mod fleet_sim;
use autopay_auth::{Policy, StoreOutage};
use fleet_sim::*;

const DAY: u64 = 86_400_000;

/// 300 instances for 6 hours, 5 min tokens, and the endpoint answering 429 (`Retry-After: 60`)
/// from the first hour for 30 minutes.
fn storm(store: StoreKind, seed: u64) -> Scenario {
    Scenario {
        instances: 300,
        duration_ms: 6 * 3_600_000,
        token_life_s: 300,
        request_gap_ms: 60_000,
        storms: vec![(3_600_000, 1_800_000, 60)],
        store,
        ..Scenario::new(seed)
    }
}

/// 200 instances for a day, 1 h tokens, the store down for an hour from the sixth.
fn outage(policy: Policy) -> Scenario {
    Scenario {
        instances: 200,
        duration_ms: DAY,
        token_life_s: 3_600,
        request_gap_ms: 120_000,
        outage: Some((6 * 3_600_000, 3_600_000)),
        policy,
        ..Scenario::new(7)
    }
}

fn run(s: Scenario) -> Report {
    let label = format!(
        "{} instances, {} s tokens, {}, seed {}",
        s.instances,
        s.token_life_s,
        s.store.name(),
        s.seed
    );
    let r = Sim::new(s).run();
    println!("{label}: {r:?}");
    r
}

#[test]
fn an_atomic_store_keeps_one_mint_per_refresh_interval_through_crashes_and_bursts() {
    for seed in 1..=3 {
        for life in [3_600, 300] {
            let r = run(Scenario {
                instances: 200,
                duration_ms: 2 * DAY,
                token_life_s: life,
                crash_every_ms: Some(6 * 3_600_000),
                request_gap_ms: 300_000,
                ..Scenario::new(seed)
            });
            assert_eq!(r.worst_interval, 1, "seed {seed}, {life} s tokens: {r:?}");
            assert!(r.mints_per_interval() <= 1.1, "{r:?}");
            assert_eq!((r.expired_served, r.past_margin_served), (0, 0), "{r:?}");
            assert!(
                r.crashes > 100 && r.served > 100_000,
                "the faults and the load happened: {r:?}"
            );
        }
    }
}

#[test]
fn a_lock_holder_that_dies_mid_mint_costs_the_lost_token_and_nothing_more() {
    for seed in 1..=3 {
        let r = run(Scenario {
            instances: 200,
            duration_ms: DAY,
            token_life_s: 300,
            holder_dies: 0.1,
            ..Scenario::new(seed)
        });
        assert!(r.mints_lost_with_holder > 10, "{r:?}");
        // each dead holder's token is lost; one more is minted once its lock expires, and
        // nothing else: no waiter mints on a timer
        assert!(
            r.mints as f64 <= r.intervals * 1.05 + r.mints_lost_with_holder as f64,
            "{r:?}"
        );
        assert_eq!(r.expired_served, 0);
    }
}

#[test]
fn a_429_storm_costs_one_token_request_per_cooldown_for_the_whole_fleet() {
    for seed in 1..=3 {
        let r = run(storm(StoreKind::Atomic, seed));
        assert_eq!(r.requests_during_cooldown, 0, "{r:?}");
        assert!(
            (25..=31).contains(&r.rate_limited),
            "one per 60 s cooldown over 30 minutes: {r:?}"
        );
        assert_eq!(r.expired_served, 0);
    }
    // without a shared store, each instance asks on its own
    let alone = run(storm(StoreKind::None, 1));
    assert!(alone.rate_limited > 1_000, "{alone:?}");
}

#[test]
fn an_hour_long_store_outage_costs_at_most_one_mint_per_instance_and_lifetime() {
    let r = run(outage(Policy::default()));
    assert!(r.mints_during_outage > 0 && r.mints_during_outage <= 200, "{r:?}");
    assert_eq!(r.worst_interval, 1, "outside the outage: {r:?}");
    assert_eq!(r.expired_served, 0);
    // failing instead of minting alone: not one token request while the store is down
    let strict = run(outage(Policy {
        store_outage: StoreOutage::Fail,
        ..Policy::default()
    }));
    assert_eq!(strict.mints_during_outage, 0, "{strict:?}");
    assert!(
        strict.errors.get("store_unavailable").copied().unwrap_or(0) > 0,
        "{strict:?}"
    );
}
