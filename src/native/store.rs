//! The stores the native client shares its token through: Redis or Postgres, one type for the
//! builder (`.store(RedisStore::open(url)?)` or `.store(PostgresStore::open(url)?)`).

use super::{PostgresStore, RedisStore};
use crate::{Shared, Store, StoreError};

/// Redis or Postgres.
#[derive(Clone, Debug)]
pub enum NativeStore {
    /// A Redis database.
    Redis(RedisStore),
    /// A Postgres table.
    Postgres(PostgresStore),
}

impl From<RedisStore> for NativeStore {
    fn from(s: RedisStore) -> Self {
        NativeStore::Redis(s)
    }
}

impl From<PostgresStore> for NativeStore {
    fn from(s: PostgresStore) -> Self {
        NativeStore::Postgres(s)
    }
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            NativeStore::Redis($s) => $e,
            NativeStore::Postgres($s) => $e,
        }
    };
}

impl Store for NativeStore {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        each!(self, s => s.get(key).await)
    }

    async fn put(&self, key: &str, value: &str, ttl_secs: u64) -> Result<(), StoreError> {
        each!(self, s => s.put(key, value, ttl_secs).await)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        each!(self, s => s.delete(key).await)
    }

    fn shared(&self) -> Shared {
        each!(self, s => s.shared())
    }

    fn min_ttl_secs(&self) -> u64 {
        each!(self, s => s.min_ttl_secs())
    }

    async fn put_if_absent(&self, key: &str, value: &str, ttl_ms: u64) -> Result<bool, StoreError> {
        each!(self, s => s.put_if_absent(key, value, ttl_ms).await)
    }

    async fn delete_if(&self, key: &str, expected: &str) -> Result<bool, StoreError> {
        each!(self, s => s.delete_if(key, expected).await)
    }
}
