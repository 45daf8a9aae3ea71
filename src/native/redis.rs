//! Redis as the fleet's store: the commands of the npm package's Redis adapter (`GET`, `SET …
//! EX`, `DEL`, and `SET … PX … NX` for the minting lock) under the same keys, so a Rust
//! service and a Node service sharing one Redis read each other's sealed records and mint once
//! between them.

use tokio::sync::OnceCell;

use crate::{Error, Shared, Store, StoreError};

/// A Redis database, connected on first use and reconnected by the client library: a Redis
/// that is down when the client starts is a store outage (survived), not a start-up failure.
#[derive(Clone)]
pub struct RedisStore {
    client: redis::Client,
    conn: std::sync::Arc<OnceCell<redis::aio::ConnectionManager>>,
    prefix: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // the URL may carry a password
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn bad_url() -> Error {
    Error::config("redis_url", "is not a redis:// or rediss:// URL")
}

impl RedisStore {
    /// The Redis at `url` (`redis://host:port/db`, or `rediss://` for TLS, the server's
    /// certificate checked against the public roots, as managed Redis services have). A URL
    /// that is not one is `invalid_config` naming `redis_url`; nothing is connected yet.
    pub fn open(url: &str) -> Result<Self, Error> {
        let client = redis::Client::open(url).map_err(|_| bad_url())?;
        Ok(Self::of(client))
    }

    /// The Redis at a `rediss://` `url` whose certificate is signed by `ca_pem` (a private CA,
    /// or a self-signed server: PEM). A CA that is not PEM is `invalid_config` naming
    /// `redis_ca`.
    pub fn open_with_ca(url: &str, ca_pem: &[u8]) -> Result<Self, Error> {
        if !url.starts_with("rediss://") {
            return Err(Error::config("redis_url", "must be rediss:// with a CA"));
        }
        if !ca_pem.starts_with(b"-----BEGIN CERTIFICATE-----") {
            return Err(Error::config("redis_ca", "must be a PEM certificate"));
        }
        let certs = redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(ca_pem.to_vec()),
        };
        let client = redis::Client::build_with_tls(url, certs).map_err(|_| bad_url())?;
        Ok(Self::of(client))
    }

    fn of(client: redis::Client) -> Self {
        Self {
            client,
            conn: Default::default(),
            prefix: String::new(),
        }
    }

    /// The same store with every key under `prefix` (as the npm adapter's `{ prefix }`).
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    async fn query<T: redis::FromRedisValue>(&self, op: &str, cmd: &redis::Cmd) -> Result<T, StoreError> {
        // the kind of failure only: a server's text could quote a key
        let failed = |e: redis::RedisError| StoreError(format!("Redis {op} failed: {:?}", e.kind()));
        let conn = self
            .conn
            .get_or_try_init(|| self.client.get_connection_manager())
            .await
            .map_err(failed)?;
        cmd.query_async(&mut conn.clone()).await.map_err(failed)
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

impl Store for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.query("get", redis::cmd("GET").arg(self.key(key))).await
    }

    async fn put(&self, key: &str, value: &str, ttl_secs: u64) -> Result<(), StoreError> {
        let cmd = redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("EX")
            .arg(ttl_secs)
            .clone();
        self.query("put", &cmd).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.query("delete", redis::cmd("DEL").arg(self.key(key))).await
    }

    fn shared(&self) -> Shared {
        Shared::Locking
    }

    fn min_ttl_secs(&self) -> u64 {
        1
    }

    async fn put_if_absent(&self, key: &str, value: &str, ttl_ms: u64) -> Result<bool, StoreError> {
        let cmd = redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(ttl_ms.max(1))
            .arg("NX")
            .clone();
        let stored: Option<String> = self.query("putIfAbsent", &cmd).await?;
        Ok(stored.is_some())
    }

    /// The npm adapter's script: Redis runs it atomically.
    async fn delete_if(&self, key: &str, expected: &str) -> Result<bool, StoreError> {
        let cmd = redis::cmd("EVAL")
            .arg(DELETE_IF)
            .arg(1)
            .arg(self.key(key))
            .arg(expected)
            .clone();
        let deleted: i64 = self.query("deleteIf", &cmd).await?;
        Ok(deleted == 1)
    }
}

/// Deletes `KEYS[1]` only while it holds `ARGV[1]` (as `js/adapters/redis-commands.js`).
const DELETE_IF: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
