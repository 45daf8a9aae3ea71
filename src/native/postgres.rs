//! Postgres as the fleet's store, natively: the table, the keys and the statements of the npm
//! package's `autopay-auth/postgres` adapter, so Rust and Node services sharing one database
//! mint once between them. The lock is `INSERT … ON CONFLICT DO UPDATE … WHERE` the row has
//! expired; its release and the refused token's delete, `DELETE … WHERE value = $2`; expiry is the
//! database's clock. Over tokio-postgres, connected on first use and again after a lost
//! connection (a database that is down is a store outage, survived).

use std::sync::Arc;

use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};

use crate::{Error, Shared, Store, StoreError};

/// The table the npm adapter uses by default.
pub const DEFAULT_TABLE: &str = "autopay_auth_kv";

/// A Postgres table as the fleet's store.
#[derive(Clone)]
pub struct PostgresStore {
    config: tokio_postgres::Config,
    table: String,
    prefix: String,
    client: Arc<Mutex<Option<Arc<Client>>>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // the URL may carry a password
        f.debug_struct("PostgresStore")
            .field("table", &self.table)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// A table name as the npm adapter takes it: lowercase, `schema.table` allowed.
fn valid_table(name: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.len() <= 63
            && p.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    let mut parts = name.split('.');
    let ok = parts.next().is_some_and(part) && parts.next().is_none_or(part);
    ok && parts.next().is_none()
}

impl PostgresStore {
    /// The database at `url` (`postgres://user:password@host:port/db`), table
    /// `autopay_auth_kv`. A URL that is not one is `invalid_config` naming `postgres_url`;
    /// nothing is connected yet. (Plain TCP: put a TLS-terminating proxy or a private network
    /// between the service and a database that requires TLS.)
    pub fn open(url: &str) -> Result<Self, Error> {
        let config = url
            .parse::<tokio_postgres::Config>()
            .map_err(|_| Error::config("postgres_url", "is not a postgres:// URL"))?;
        Ok(Self {
            config,
            table: DEFAULT_TABLE.to_owned(),
            prefix: String::new(),
            client: Arc::default(),
        })
    }

    /// The same store on `table` (`schema.table` allowed): `invalid_config` naming
    /// `postgres_table` unless it is a lowercase SQL name.
    pub fn with_table(mut self, table: &str) -> Result<Self, Error> {
        if !valid_table(table) {
            return Err(Error::config(
                "postgres_table",
                "must be a lowercase SQL name (schema.table allowed)",
            ));
        }
        self.table = table.to_owned();
        Ok(self)
    }

    /// The same store with every key under `prefix` (as the npm adapter's `{ prefix }`).
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The `CREATE TABLE IF NOT EXISTS` of this store's table (the npm adapter's
    /// `postgresTableSql()`), for a migration.
    pub fn table_sql(&self) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {} (key text PRIMARY KEY, value text NOT NULL, expires_at timestamptz NOT NULL)",
            self.table
        )
    }

    /// Makes the table if it is not there (needs the privilege; otherwise make it in a
    /// migration with [`PostgresStore::table_sql`]).
    pub async fn create_table(&self) -> Result<(), StoreError> {
        let sql = self.table_sql();
        self.with_client("create table", |c| async move { c.batch_execute(&sql).await })
            .await
    }

    async fn connected(&self) -> Result<Arc<Client>, StoreError> {
        let mut held = self.client.lock().await;
        if let Some(c) = held.as_ref().filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(c));
        }
        let (client, connection) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|e| StoreError(format!("Postgres connect failed: {}", kind(&e))))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let client = Arc::new(client);
        *held = Some(Arc::clone(&client));
        Ok(client)
    }

    async fn with_client<T, F, Fut>(&self, op: &str, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(Arc<Client>) -> Fut,
        Fut: std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let client = self.connected().await?;
        f(client)
            .await
            .map_err(|e| StoreError(format!("Postgres {op} failed: {}", kind(&e))))
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

/// The kind of failure only: a server's message could quote a value.
fn kind(e: &tokio_postgres::Error) -> String {
    match e.code() {
        Some(state) => format!("SQLSTATE {}", state.code()),
        None if e.is_closed() => "connection closed".into(),
        None => "I/O or protocol error".into(),
    }
}

impl Store for PostgresStore {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let sql = format!(
            "SELECT value FROM {} WHERE key = $1 AND expires_at > now()",
            self.table
        );
        let key = self.key(key);
        let row = self
            .with_client("get", |c| async move { c.query_opt(&sql, &[&key]).await })
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn put(&self, key: &str, value: &str, ttl_secs: u64) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO {} (key, value, expires_at) VALUES ($1, $2, now() + $3::float8 * interval '1 millisecond') \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at",
            self.table
        );
        let (key, value, ms) = (self.key(key), value.to_owned(), (ttl_secs * 1000) as f64);
        self.with_client(
            "put",
            |c| async move { c.execute(&sql, &[&key, &value, &ms]).await },
        )
        .await
        .map(drop)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let sql = format!("DELETE FROM {} WHERE key = $1", self.table);
        let key = self.key(key);
        self.with_client("delete", |c| async move { c.execute(&sql, &[&key]).await })
            .await
            .map(drop)
    }

    fn shared(&self) -> Shared {
        Shared::Locking
    }

    fn min_ttl_secs(&self) -> u64 {
        1
    }

    async fn put_if_absent(&self, key: &str, value: &str, ttl_ms: u64) -> Result<bool, StoreError> {
        let sql = format!(
            "INSERT INTO {} AS t (key, value, expires_at) VALUES ($1, $2, now() + $3::float8 * interval '1 millisecond') \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at \
             WHERE t.expires_at <= now()",
            self.table
        );
        let (key, value, ms) = (self.key(key), value.to_owned(), ttl_ms.max(1) as f64);
        let n = self
            .with_client("putIfAbsent", |c| async move {
                c.execute(&sql, &[&key, &value, &ms]).await
            })
            .await?;
        Ok(n > 0)
    }

    async fn delete_if(&self, key: &str, expected: &str) -> Result<bool, StoreError> {
        let sql = format!(
            "DELETE FROM {} WHERE key = $1 AND value = $2 AND expires_at > now()",
            self.table
        );
        let (key, expected) = (self.key(key), expected.to_owned());
        let n = self
            .with_client("deleteIf", |c| async move {
                c.execute(&sql, &[&key, &expected]).await
            })
            .await?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_as_the_npm_adapter_takes_them() {
        for ok in ["autopay_auth_kv", "tokens.autopay_auth_kv", "_t1"] {
            assert!(valid_table(ok), "{ok}");
        }
        for bad in ["", "Tokens", "a;drop table x", "a.b.c", "1abc", "a b"] {
            assert!(!valid_table(bad), "{bad}");
        }
        let s = PostgresStore::open("postgres://u:p@127.0.0.1:5432/db").unwrap();
        assert!(!format!("{s:?}").contains(":p@"), "no password in Debug");
        assert_eq!(s.with_table("x;").unwrap_err().field(), Some("postgres_table"));
        assert!(PostgresStore::open("not a url").is_err());
    }
}
