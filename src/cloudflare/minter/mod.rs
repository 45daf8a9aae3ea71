//! `TokenMinter`, the Durable Object that is the **only** code calling the token endpoint, and
//! the isolates' client for it (a [`TokenSource`]). Both sides of its small wire live here.
//!
//! One object per cache key. Its manager runs memory → the object's own storage → token
//! endpoint with single-flight: a Durable Object has one I/O context for all its requests, so
//! every waiter shares one request. The record lives in the object's storage (strongly
//! consistent, beside the ledger) and is copied to KV for the isolates, which only read KV; the
//! copy is written after the answer, so no caller waits for it.

mod client;
#[cfg(feature = "worker")]
mod object;
#[cfg(feature = "worker")]
mod store;
mod wire;

use serde::Serialize;

use crate::{Event, EventKind, Phase};

pub use client::MinterClient;

/// One JSON log line per event that an operator counts or alerts on (Workers Logs reads JSON).
pub fn log_event(event: &Event) {
    // routine refreshes stay out of the Worker's logs
    if event.kind == EventKind::Refresh {
        return;
    }
    #[derive(Serialize)]
    struct Line<'a> {
        level: &'static str,
        message: String,
        event: &'a Event,
    }
    let line = Line {
        level: event.kind.level(),
        message: format!("autopay-auth: {}", event.message()),
        event,
    };
    worker::console_log!("{}", serde_json::to_string(&line).unwrap_or_default());
}

/// `fresh`, `stale` or `expired`.
pub fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Fresh => "fresh",
        Phase::Stale => "stale",
        Phase::Expired => "expired",
    }
}
