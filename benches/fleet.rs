//! The fleet simulation at internet scale (`cargo bench --bench fleet`; `npm run bench` runs it
//! and writes BENCHMARKS.md from its JSON): 1,000 instances of the real client (driver and
//! machine) × 30 simulated days for 24 h, 1 h and 5 min tokens on each kind of store, with every
//! fault on a schedule (crashes, lock holders dying or paused mid-mint, failing and late store
//! calls, an hour-long store outage, a 429 storm); then how mints grow with the fleet, 10 →
//! 10,000 instances. Prints a table with the callers' failures; writes
//! `bench/results/fleet.json`.
#[path = "../tests/fleet_sim/mod.rs"]
mod fleet_sim;

use std::time::Instant;

use autopay_auth::{Policy, StoreOutage};
use fleet_sim::*;

const DAY: u64 = 86_400_000;
const HOUR: u64 = 3_600_000;

fn stores() -> [StoreKind; 3] {
    [
        StoreKind::Atomic,
        StoreKind::Eventual { lag_ms: 60_000 },
        StoreKind::None,
    ]
}

fn main() {
    // `cargo test --all-targets` runs this too, unoptimised: the run is for `cargo bench` only
    if !std::env::args().any(|a| a == "--bench") {
        println!("fleet: run with `cargo bench --bench fleet` (the short run is tests/fleet_simulation.rs)");
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let days = if quick { 3 } else { 30 };
    let mut table = Vec::new();
    println!("fleet simulation: 1,000 instances x {days} days, store 0-200 ms away");
    println!(
        "{:<46} {:>6} {:>7} {:>8} {:>6} {:>6} {:>6} {:>8} {:>8} {:>6}",
        "store, token", "mints", "per int", "worst", "lost", "outage", "429s", "in cool", "failed", "secs"
    );
    for life in [86_400, 3_600, 300] {
        let variants = stores()
            .map(|store| (store, StoreOutage::Mint))
            .into_iter()
            .chain([(StoreKind::Atomic, StoreOutage::Fail)]);
        for (store, outage) in variants {
            let s = Scenario {
                policy: Policy {
                    store_outage: outage,
                    ..Policy::default()
                },
                instances: 1_000,
                duration_ms: days * DAY,
                token_life_s: life,
                store,
                crash_every_ms: Some(DAY),
                holder_dies: 0.01,
                holder_pauses: 0.01,
                store_faults: 0.001,
                store_late: 0.001,
                outage: Some((days * DAY / 3, HOUR)),
                storms: vec![(2 * days * DAY / 3, HOUR / 2, 60)],
                ..Scenario::new(42)
            };
            let started = Instant::now();
            let r = Sim::new(s).run();
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{:<46} {:>6} {:>7.2} {:>8} {:>6} {:>6} {:>6} {:>8} {:>8} {:>6.1}",
                format!(
                    "{}{}, {} s",
                    store.name(),
                    if outage == StoreOutage::Fail {
                        ", outage: fail"
                    } else {
                        ""
                    },
                    life
                ),
                r.mints,
                r.mints_per_interval(),
                r.worst_interval,
                r.mints_lost_with_holder,
                r.mints_during_outage,
                r.rate_limited,
                r.requests_during_cooldown,
                r.failures(),
                secs
            );
            if !r.errors.is_empty() {
                println!("{:<46} callers failed: {:?}", "", r.errors);
            }
            table.push(serde_json::json!({
                "store": store.name(), "storeOutage": format!("{outage:?}").to_lowercase(), "tokenLifeSecs": life, "instances": 1000, "days": days,
                "mints": r.mints, "intervals": r.intervals, "mintsPerInterval": r.mints_per_interval(),
                "worstInterval": r.worst_interval, "lostWithHolder": r.mints_lost_with_holder,
                "duringOutage": r.mints_during_outage, "tokenRequests": r.token_requests,
                "rateLimited": r.rate_limited, "requestsDuringCooldown": r.requests_during_cooldown,
                "served": r.served, "expiredServed": r.expired_served, "failures": r.failures(),
                "errors": r.errors, "crashes": r.crashes, "storeCalls": r.store_calls, "seconds": secs,
            }));
        }
    }
    println!("\nmints per refresh interval by fleet size (1 h tokens, 2 days, crashes, no outage)");
    let mut growth = Vec::new();
    let sizes: &[usize] = if quick {
        &[10, 100, 1_000]
    } else {
        &[10, 100, 1_000, 10_000]
    };
    for &n in sizes {
        for store in stores() {
            let s = Scenario {
                instances: n,
                duration_ms: 2 * DAY,
                token_life_s: 3_600,
                store,
                crash_every_ms: Some(DAY),
                // the same load on the fleet whatever its size: 10 requests a second in all
                request_gap_ms: (n as u64 * 100).max(1_000),
                ..Scenario::new(7)
            };
            let r = Sim::new(s).run();
            println!(
                "{:>6} instances, {:<46} {:>8.2} mints/interval, worst {}",
                n,
                store.name(),
                r.mints_per_interval(),
                r.worst_interval
            );
            growth.push(serde_json::json!({
                "instances": n, "store": store.name(), "mintsPerInterval": r.mints_per_interval(),
                "worstInterval": r.worst_interval, "mints": r.mints, "expiredServed": r.expired_served,
                "served": r.served, "failures": r.failures(), "errors": r.errors,
            }));
        }
    }
    let out = serde_json::json!({ "days": days, "table": table, "growth": growth });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/results");
    std::fs::create_dir_all(&dir).expect("bench/results");
    std::fs::write(
        dir.join("fleet.json"),
        serde_json::to_string_pretty(&out).unwrap(),
    )
    .expect("write");
    println!("\nwrote bench/results/fleet.json");
}
