//! The npm edge: wasm-bindgen bindings around the core — the options reader, the error
//! conversion and the exported client. The JS entry files in `js/` wrap [`client`].

mod client;
mod errors;
mod options;

pub use client::WasmClient;
