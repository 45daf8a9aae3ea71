//! The minter's store: the sealed record, the fleet state and the minting lock in the object's
//! own storage (strongly consistent; every read and write of one request runs under the object's
//! input gate), the record copied to KV for the isolates, which only read KV.

use std::cell::RefCell;
use std::rc::Rc;

use futures_util::future::{FutureExt, LocalBoxFuture, Shared as SharedFuture};
use js_sys::Reflect;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::spawn_local;
use worker::{Result, Storage};

use crate::js::kv::KvStore;
use crate::{FLEET_SUFFIX, MINT_LOCK_SUFFIX, Shared, Store, StoreError};

/// A value of the object's storage, as the platform gives it (`None` when absent): read raw,
/// never through typed deserialisation.
pub(super) async fn stored(storage: &Storage, key: &str) -> Result<Option<JsValue>> {
    let found = storage
        .get_multiple(vec![key])
        .await?
        .get(&JsValue::from_str(key));
    Ok((!found.is_undefined()).then_some(found))
}

/// The minter's store: the sealed record in the object's storage, copied to KV for isolates.
pub struct MinterStore {
    storage: Storage,
    kv: Rc<KvStore>,
    /// The last of the KV writes under way: each write (copy or delete) starts after the one
    /// before, so an older record or a dropped token never lands in KV last.
    kv_writes: RefCell<KvWrite>,
}

/// A record as the object keeps it: `{ value, expires_at_ms }`, the sealed value and when KV
/// should let it expire.
struct Kept {
    value: String,
    expires_at_ms: u64,
}

impl Kept {
    fn from_js(v: &JsValue) -> Option<Self> {
        Some(Self {
            value: Reflect::get(v, &"value".into()).ok()?.as_string()?,
            expires_at_ms: Reflect::get(v, &"expires_at_ms".into()).ok()?.as_f64()? as u64,
        })
    }

    fn to_js(&self) -> JsValue {
        let o = js_sys::Object::new();
        crate::js::set(&o, "value", &self.value.as_str().into());
        crate::js::set(&o, "expires_at_ms", &(self.expires_at_ms as f64).into());
        o.into()
    }
}

fn store_error(op: &str, e: &worker::Error) -> StoreError {
    StoreError(format!("Durable Object storage {op} failed: {e}"))
}

type KvWrite = SharedFuture<LocalBoxFuture<'static, std::result::Result<(), StoreError>>>;

impl MinterStore {
    pub(super) fn new(storage: Storage, kv: KvStore) -> Self {
        Self {
            storage,
            kv: Rc::new(kv),
            kv_writes: RefCell::new(std::future::ready(Ok(())).boxed_local().shared()),
        }
    }

    /// Queues `write` behind the KV writes under way; the returned future is its outcome.
    fn queue_kv_write(
        &self,
        write: impl std::future::Future<Output = std::result::Result<(), StoreError>> + 'static,
    ) -> KvWrite {
        let before = self.kv_writes.borrow().clone();
        let next = async move {
            let _ = before.await;
            write.await
        }
        .boxed_local()
        .shared();
        *self.kv_writes.borrow_mut() = next.clone();
        next
    }

    /// Copies `value` to KV after the answer, behind the KV writes already under way: no caller
    /// waits for it, and a failed copy is logged (isolates then ask the object, which has the
    /// record).
    fn copy_to_kv(&self, key: &str, value: &str, ttl_secs: u64) {
        let (kv, key, value) = (Rc::clone(&self.kv), key.to_owned(), value.to_owned());
        let copy = self.queue_kv_write(async move { kv.put(&key, &value, ttl_secs).await });
        spawn_local(async move {
            if let Err(e) = copy.await {
                worker::console_warn!("autopay-auth: could not copy the token record to KV: {}", e.0);
            }
        });
    }
}

/// Whether `key` is the token record, which isolates read from KV: the fleet state and the
/// minting lock stay in the object's storage.
fn mirrored(key: &str) -> bool {
    !key.ends_with(FLEET_SUFFIX) && !key.ends_with(MINT_LOCK_SUFFIX)
}

impl MinterStore {
    /// What is kept under `key` and has not expired.
    async fn kept(&self, key: &str) -> std::result::Result<Option<Kept>, StoreError> {
        let kept = stored(&self.storage, key)
            .await
            .map_err(|e| store_error("get", &e))?
            .and_then(|v| Kept::from_js(&v));
        Ok(kept.filter(|k| k.expires_at_ms > js_sys::Date::now() as u64))
    }

    async fn keep(&self, key: &str, value: &str, ttl_ms: u64) -> std::result::Result<(), StoreError> {
        let kept = Kept {
            value: value.to_owned(),
            expires_at_ms: js_sys::Date::now() as u64 + ttl_ms,
        };
        self.storage
            .put_raw(key, kept.to_js())
            .await
            .map_err(|e| store_error("put", &e))
    }
}

impl Store for MinterStore {
    /// Read when the object starts without the token in memory: the record is copied to KV
    /// again, in case the last copy was lost. What has expired is absent.
    async fn get(&self, key: &str) -> std::result::Result<Option<String>, StoreError> {
        Ok(self.kept(key).await?.map(|k| {
            let ttl_secs = k.expires_at_ms.saturating_sub(js_sys::Date::now() as u64) / 1000;
            if ttl_secs >= crate::MIN_STORE_TTL_SECS && mirrored(key) {
                self.copy_to_kv(key, &k.value, ttl_secs);
            }
            k.value
        }))
    }

    async fn put(&self, key: &str, value: &str, ttl_secs: u64) -> std::result::Result<(), StoreError> {
        self.keep(key, value, ttl_secs * 1000).await?;
        if ttl_secs >= crate::MIN_STORE_TTL_SECS && mirrored(key) {
            self.copy_to_kv(key, value, ttl_secs);
        }
        Ok(())
    }

    /// The object's storage takes any TTL; only what lives 60 s or more is copied to KV.
    fn min_ttl_secs(&self) -> u64 {
        1
    }

    /// The object's storage locks: its input gate delivers no other event (no request, no fetch
    /// answer) while its storage is read and written, so a read and the write after it are one
    /// step — the minting lock and compare-and-delete are atomic. With a lock, the machine also
    /// pools the fleet state it keeps there (the mint budget's window, a gate still closed), so
    /// a restart of the object resets neither, and nothing keeps a second copy of them.
    fn shared(&self) -> Shared {
        Shared::Locking
    }

    async fn put_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl_ms: u64,
    ) -> std::result::Result<bool, StoreError> {
        if self.kept(key).await?.is_some() {
            return Ok(false);
        }
        self.keep(key, value, ttl_ms).await.map(|()| true)
    }

    /// Removes the record here and from KV, before answering (a dropped token must not be
    /// read back by an isolate).
    async fn delete(&self, key: &str) -> std::result::Result<(), StoreError> {
        if !mirrored(key) {
            return self
                .storage
                .delete(key)
                .await
                .map(drop)
                .map_err(|e| store_error("delete", &e));
        }
        let (kv, owned_key) = (Rc::clone(&self.kv), key.to_owned());
        // behind any copy under way, which lands first, then goes
        let from_kv = self.queue_kv_write(async move { kv.delete(&owned_key).await });
        let (here, kv) = futures_util::join!(self.storage.delete(key), from_kv);
        here.map_err(|e| store_error("delete", &e))?;
        kv
    }

    /// Compare-and-delete in one step (under the input gate, as [`Self::shared`] says).
    async fn delete_if(&self, key: &str, expected: &str) -> std::result::Result<bool, StoreError> {
        if self.kept(key).await?.is_none_or(|k| k.value != expected) {
            return Ok(false);
        }
        self.delete(key).await.map(|()| true)
    }
}
