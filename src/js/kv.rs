//! Any object with the Workers `KVNamespace` shape as the core's [`Store`](crate::Store), with
//! an optional atomic `putIfAbsent`.

use js_sys::{Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::errors::error_name;
use super::set;
use crate::{Shared, Store, StoreError};

#[wasm_bindgen]
extern "C" {
    /// `get(key) → Promise<string|null>`, `put(key, value, {expirationTtl})`, `delete(key)`.
    pub(crate) type JsKv;
    #[wasm_bindgen(method, catch, js_name = get)]
    fn kv_get(this: &JsKv, key: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch, js_name = put)]
    fn kv_put(this: &JsKv, key: &str, value: &str, options: &JsValue) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch, js_name = delete)]
    fn kv_delete(this: &JsKv, key: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch, js_name = putIfAbsent)]
    fn kv_put_if_absent(this: &JsKv, key: &str, value: &str, options: &JsValue) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch, js_name = deleteIf)]
    fn kv_delete_if(this: &JsKv, key: &str, expected: &str) -> Result<JsValue, JsValue>;

}

/// The user's KV object, the shortest TTL it takes, whether it locks (`putIfAbsent` and
/// `deleteIf`), and whether it can compare and delete (`deleteIf`).
pub(crate) struct KvStore {
    kv: JsKv,
    min_ttl_secs: u64,
    locks: bool,
    deletes_if: bool,
}

fn has(kv: &JsKv, method: &str) -> bool {
    Reflect::get(kv, &method.into()).is_ok_and(|f| f.is_function())
}

impl KvStore {
    /// Workers KV, which takes no TTL under 60 s.
    #[cfg_attr(not(feature = "worker-front"), allow(dead_code))]
    pub(crate) fn workers(kv: JsKv) -> Self {
        Self {
            locks: false,
            deletes_if: false,
            kv,
            min_ttl_secs: crate::MIN_STORE_TTL_SECS,
        }
    }

    /// The user's store: its `minExpirationTtl` (whole seconds, 1 to 86400) says the shortest
    /// TTL it takes; without one it is taken for Workers KV (60 s). `Err` names the option that
    /// is wrong, and why.
    #[cfg_attr(not(feature = "npm"), allow(dead_code))]
    pub(crate) fn user(kv: JsKv) -> Result<Self, (&'static str, &'static str)> {
        let declared = Reflect::get(&kv, &"minExpirationTtl".into()).unwrap_or(JsValue::UNDEFINED);
        let min_ttl_secs = if declared.is_undefined() {
            crate::MIN_STORE_TTL_SECS
        } else {
            match declared.as_f64() {
                Some(n) if n.fract() == 0.0 && (1.0..=86_400.0).contains(&n) => n as u64,
                _ => {
                    return Err((
                        "kv.minExpirationTtl",
                        "must be a whole number of seconds from 1 to 86400",
                    ));
                }
            }
        };
        // a lock is the optional pair `putIfAbsent(key, value, { ttlMs })` and
        // `deleteIf(key, expected)` (the Redis, Upstash, Deno KV and DynamoDB adapters have
        // both; Workers KV neither): a lock without a fenced release is no lock
        let (puts_if_absent, deletes_if) = (has(&kv, "putIfAbsent"), has(&kv, "deleteIf"));
        if puts_if_absent && !deletes_if {
            return Err((
                "kv",
                "has putIfAbsent but no deleteIf(key, expected): a minting lock needs both, atomic \
                 (deleteIf deletes the key only while it holds expected)",
            ));
        }
        Ok(Self {
            locks: puts_if_absent,
            deletes_if,
            kv,
            min_ttl_secs,
        })
    }
}

async fn settle(op: &str, r: Result<JsValue, JsValue>) -> Result<JsValue, StoreError> {
    let out = match r {
        Ok(v) => JsFuture::from(Promise::resolve(&v)).await,
        Err(e) => Err(e),
    };
    // the operation and the error's name: its text may quote a key or a value (the core turns
    // the failure into a `store_error` event, which the edge logs)
    out.map_err(|e| StoreError(format!("KV {op} failed: {}", error_name(&e))))
}

impl Store for KvStore {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        // A value that is not a string (another library's data) is a miss.
        Ok(settle("get", self.kv.kv_get(key)).await?.as_string())
    }

    async fn put(&self, key: &str, value: &str, ttl_secs: u64) -> Result<(), StoreError> {
        let opts = Object::new();
        set(&opts, "expirationTtl", &JsValue::from(ttl_secs as f64));
        settle("put", self.kv.kv_put(key, value, &opts)).await.map(drop)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        settle("delete", self.kv.kv_delete(key)).await.map(drop)
    }

    fn min_ttl_secs(&self) -> u64 {
        self.min_ttl_secs
    }

    fn shared(&self) -> Shared {
        if self.locks {
            Shared::Locking
        } else {
            Shared::ReadWrite
        }
    }

    /// The object's `putIfAbsent` (asked only when it has one).
    async fn put_if_absent(&self, key: &str, value: &str, ttl_ms: u64) -> Result<bool, StoreError> {
        let opts = Object::new();
        set(&opts, "ttlMs", &JsValue::from(ttl_ms as f64));
        let stored = settle("putIfAbsent", self.kv.kv_put_if_absent(key, value, &opts)).await?;
        Ok(stored.is_truthy())
    }

    async fn delete_if(&self, key: &str, expected: &str) -> Result<bool, StoreError> {
        if !self.deletes_if {
            return Ok(false);
        }
        let deleted = settle("deleteIf", self.kv.kv_delete_if(key, expected)).await?;
        Ok(deleted.is_truthy())
    }
}
