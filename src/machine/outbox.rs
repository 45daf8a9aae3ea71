//! What the machine tells the world: the one table from what happened to the counters
//! ([`Stats`]) and to the [`Event`]s the host's observer is handed.

use super::StoreError;
use crate::code;
use crate::error::Error;
use crate::events::{Event, EventKind};
use crate::quota::Declared;
use crate::stats::Stats;

/// Something worth counting or telling.
pub(crate) enum Note<'a> {
    /// A call was answered from memory.
    MemoryHit,
    /// A flight took a record from the store.
    StoreHit,
    /// A call joined the flight under way.
    Coalesced,
    /// A stored value did not open.
    StoreRejected,
    /// A store operation failed (survived).
    StoreError(&'a StoreError),
    /// A background refresh started.
    Refresh,
    /// The token source answered with a token (counted before it is checked).
    Answered,
    /// A token was kept from the token source.
    Minted { lifetime_ms: u64 },
    /// A token request failed; `retrying`: another attempt of the same request follows.
    TokenError { error: &'a Error, retrying: bool },
    /// A rate limit started a cooldown of `ms`.
    Cooldown { error: &'a Error, ms: u64 },
    /// The mint budget refused a token request.
    BudgetExhausted { error: &'a Error, limit: &'a str },
    /// The token endpoint declared a quota.
    Quota(&'a Declared),
    /// The store could not be reached by a caller without a token: it minted alone, or failed.
    StoreOutage { minted: bool },
}

/// The counters and the events not yet taken.
#[derive(Clone, Debug, Default)]
pub(crate) struct Outbox {
    events: Vec<Event>,
    stats: Stats,
}

impl Outbox {
    /// The counters so far.
    pub(crate) fn stats(&self) -> Stats {
        self.stats
    }

    /// The events since the last call, oldest first.
    pub(crate) fn take(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Counts `what`, and tells it when it is an event.
    pub(crate) fn note(&mut self, now: u64, what: Note<'_>) {
        let s = &mut self.stats;
        let event = match what {
            Note::MemoryHit => {
                s.memory_hits += 1;
                None
            }
            Note::StoreHit => {
                s.kv_hits += 1;
                None
            }
            Note::Coalesced => {
                s.coalesced += 1;
                None
            }
            Note::StoreRejected => {
                s.kv_rejected += 1;
                None
            }
            Note::Answered => {
                s.mints += 1;
                None
            }
            Note::StoreError(error) => {
                s.kv_errors += 1;
                let mut e = Event::new(EventKind::StoreError, now);
                e.detail = Some(error.0.clone());
                Some(e)
            }
            Note::Refresh => {
                s.refreshes += 1;
                Some(Event::new(EventKind::Refresh, now))
            }
            Note::Minted { lifetime_ms } => {
                let mut e = Event::new(EventKind::Mint, now);
                e.mints = Some(s.mints);
                e.lifetime_secs = Some(lifetime_ms / 1000);
                Some(e)
            }
            Note::TokenError { error, retrying } => {
                s.failures += 1;
                let mut e = Event::new(EventKind::TokenError, now);
                e.code = Some(error.code());
                e.status = error.status();
                e.detail = retrying.then(|| "retrying".to_owned());
                Some(e)
            }
            Note::Cooldown { error, ms } => {
                let mut e = Event::new(EventKind::Cooldown, now);
                e.code = Some(error.code());
                e.status = error.status();
                e.retry_after = Some(ms.div_ceil(1000));
                Some(e)
            }
            Note::BudgetExhausted { error, limit } => {
                s.budget_refusals += 1;
                let mut e = Event::new(EventKind::BudgetExhausted, now);
                e.code = Some(error.code());
                e.retry_after = error.retry_after();
                e.detail = Some(limit.to_owned());
                Some(e)
            }
            Note::Quota(d) => {
                let mut e = Event::new(EventKind::Quota, now);
                e.detail = Some(d.name.clone());
                e.remaining = Some(d.remaining);
                e.limit = d.limit;
                e.retry_after = Some(d.reset_ms.saturating_sub(now).div_ceil(1000));
                Some(e)
            }
            Note::StoreOutage { minted } => {
                let mut e = Event::new(EventKind::StoreOutage, now);
                e.detail = Some(if minted { "mint" } else { "fail" }.into());
                e.code = (!minted).then_some(code::STORE_UNAVAILABLE);
                Some(e)
            }
        };
        self.events.extend(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_count_has_one_note_and_events_carry_the_count() {
        let mut o = Outbox::default();
        o.note(1, Note::Answered);
        o.note(
            1,
            Note::Minted {
                lifetime_ms: 3_600_000,
            },
        );
        o.note(2, Note::MemoryHit);
        o.note(
            3,
            Note::StoreError(&StoreError("KV get failed: TypeError".into())),
        );
        let s = o.stats();
        assert_eq!((s.mints, s.memory_hits, s.kv_errors), (1, 1, 1));
        let events = o.take();
        let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::Mint, EventKind::StoreError]);
        assert_eq!(events[0].mints, Some(1));
        assert_eq!(events[0].lifetime_secs, Some(3600));
        assert!(o.take().is_empty(), "taken once");
    }

    #[test]
    fn an_outage_that_fails_carries_its_code() {
        let mut o = Outbox::default();
        o.note(1, Note::StoreOutage { minted: true });
        o.note(2, Note::StoreOutage { minted: false });
        let e = o.take();
        assert_eq!((e[0].detail.as_deref(), e[0].code), (Some("mint"), None));
        assert_eq!(
            (e[1].detail.as_deref(), e[1].code),
            (Some("fail"), Some(code::STORE_UNAVAILABLE))
        );
    }
}
