//! One Rust instance of a mixed fleet (tests/runtimes/fleet.test.mjs): the native client on a
//! shared Redis, with no memory shared with the others. The protocol of
//! tests/runtimes/fixtures/fleet-instance.mjs: it connects, says `ready`, waits for `go` on
//! stdin, makes its burst of calls, and prints what it got as one JSON line.
//!   fleet_instance '{"tokenUrl":…,"redisUrl":…,"calls":10,"spreadMs":0}'
//!   fleet_instance '{"tokenUrl":…,"store":"postgres","postgres":{"url":…,"table":…},…}'

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use autopay_auth::native::{Client, NativeStore, PostgresStore, RedisStore};
use autopay_auth::{ClientSecret, Config, DEFAULT_AUDIENCE};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() {
    let arg = std::env::args().nth(1).expect("a JSON config");
    let cfg: serde_json::Value = serde_json::from_str(&arg).expect("a JSON config");
    let text = |k: &str| cfg[k].as_str().expect(k).to_owned();
    let number = |k: &str, d: u64| cfg[k].as_u64().unwrap_or(d);
    let config = Config::new(
        &text("tokenUrl"),
        "runtime-client",
        ClientSecret::new("runtime-secret"),
        DEFAULT_AUDIENCE,
    )
    .expect("a valid config");
    let store: NativeStore = if cfg["store"] == "postgres" {
        let pg = &cfg["postgres"];
        PostgresStore::open(pg["url"].as_str().expect("a Postgres URL"))
            .and_then(|s| s.with_table(pg["table"].as_str().unwrap_or("autopay_auth_kv")))
            .expect("a Postgres store")
            .into()
    } else {
        RedisStore::open(&text("redisUrl")).expect("a Redis URL").into()
    };
    let client = Client::builder(config).store(store).build().expect("a client");

    println!("ready");
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim() == "go" {
            break;
        }
    }
    let spread = number("spreadMs", 0);
    if spread > 0 {
        let mut b = [0u8; 8];
        getrandom::getrandom(&mut b).expect("randomness");
        tokio::time::sleep(Duration::from_millis(u64::from_le_bytes(b) % spread)).await;
    }
    let calls: Vec<_> = (0..number("calls", 10))
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.token_info().await })
        })
        .collect();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    let (mut tokens, mut errors, mut served, mut expired) = (BTreeSet::new(), Vec::new(), 0, 0);
    for call in calls {
        match call.await.expect("a call") {
            Ok(info) => {
                served += 1;
                expired += u32::from(info.expires_at_ms <= now);
                tokens.insert(info.access_token);
            }
            Err(e) => errors.push(e.code()),
        }
    }
    let report = serde_json::json!({
        "runtime": "rust",
        "tokens": tokens,
        "served": served,
        "expired": expired,
        "errors": errors,
        "stats": client.stats(),
    });
    println!("{report}");
}
