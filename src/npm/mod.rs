//! The npm edge: wasm-bindgen bindings around the core. Everything platform-specific for
//! JavaScript hosts lives here: the fetch transport, the KV adapter, the Date clock, the
//! options reader and the error conversion. The JS entry files in `js/` wrap [`client`].

mod client;
mod errors;
mod kv;
mod options;
mod transport;

pub use client::WasmClient;

/// The platform clock: `Date.now()`.
pub(crate) struct DateClock;

impl crate::Clock for DateClock {
    fn now_ms(&self) -> u64 {
        js_sys::Date::now() as u64
    }
}
