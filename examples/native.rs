//! The native client in a service: 100 tasks ask for a token at once; one token request is
//! made, and every task gets the same token.
//!
//! ```text
//! AUTOPAY_CLIENT_ID=… AUTOPAY_CLIENT_SECRET=… cargo run --example native --features native
//! ```
//! `AUTOPAY_TOKEN_URL` points it elsewhere (the emulator: `npm run emulator`), and
//! `AUTOPAY_REDIS_URL` shares the token through Redis with every other process that uses it —
//! Node services too: the README's Node snippet uses the same key prefix, `myapp:`.

use std::collections::BTreeSet;
use std::process::ExitCode;

use autopay_auth::native::{Client, RedisStore};
use autopay_auth::{ClientSecret, Config, DEFAULT_AUDIENCE, DEFAULT_TOKEN_URL};

const TASKS: usize = 100;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("native: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let setting = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let client_id = setting("AUTOPAY_CLIENT_ID").ok_or("set AUTOPAY_CLIENT_ID")?;
    let secret = ClientSecret::new(setting("AUTOPAY_CLIENT_SECRET").ok_or("set AUTOPAY_CLIENT_SECRET")?);
    let token_url = setting("AUTOPAY_TOKEN_URL").unwrap_or_else(|| DEFAULT_TOKEN_URL.into());
    let config = Config::new(&token_url, &client_id, secret, DEFAULT_AUDIENCE)?;

    let mut builder = Client::builder(config);
    if let Some(url) = setting("AUTOPAY_REDIS_URL") {
        // the same prefix as the Node services' `redisKV(redis, { prefix: 'myapp:' })`: one record
        builder = builder.store(RedisStore::open(&url)?.with_prefix("myapp:"));
    }
    let client = builder.build()?;

    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.token().await })
        })
        .collect();
    let mut tokens = BTreeSet::new();
    for task in tasks {
        tokens.insert(task.await??);
    }
    let stats = client.stats();
    println!(
        "{TASKS} tasks: {} distinct token(s), {} mint(s); {} joined that mint, {} from memory, {} from the store",
        tokens.len(),
        stats.mints,
        stats.coalesced,
        stats.memory_hits,
        stats.kv_hits
    );
    Ok(())
}
