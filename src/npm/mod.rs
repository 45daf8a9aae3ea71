//! The npm edge: wasm-bindgen bindings around the core — the options reader, the error
//! conversion, where events go, and the exported client. The JS entry files in `js/` wrap [`client`].

mod client;
mod errors;
mod observe;
mod options;
mod telemetry;

pub use client::WasmClient;
