//! The minting authority's ledger, so an operator sees at a glance that the fleet mints about
//! one token per lifetime: mints per hour for the last 48 hours, the last mint and the last
//! failure. Kept by the Durable Object in its storage; shown in the keyed `/healthz`.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::{Event, EventKind};

/// Hours kept.
pub const LEDGER_HOURS: usize = 48;
const HOUR_MS: u64 = 3_600_000;

/// Mints per hour and the last outcomes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// `[hour start (ms since the epoch), mints in that hour]`, oldest first, hours with a mint.
    pub mints_per_hour: VecDeque<(u64, u32)>,
    /// When the last token was minted.
    pub last_mint: Option<u64>,
    /// When the last token request failed, and its code.
    pub last_failure: Option<(u64, String)>,
}

impl Ledger {
    /// Records `event`; returns whether the ledger changed (and should be stored).
    pub fn record(&mut self, event: &Event) -> bool {
        match event.kind {
            EventKind::Mint => {
                let hour = event.at - event.at % HOUR_MS;
                match self.mints_per_hour.back_mut() {
                    Some((h, n)) if *h == hour => *n += 1,
                    _ => self.mints_per_hour.push_back((hour, 1)),
                }
                while self
                    .mints_per_hour
                    .front()
                    .is_some_and(|(h, _)| *h + (LEDGER_HOURS as u64) * HOUR_MS <= hour)
                {
                    self.mints_per_hour.pop_front();
                }
                self.last_mint = Some(event.at);
                true
            }
            EventKind::TokenError | EventKind::BudgetExhausted => {
                self.last_failure = Some((event.at, event.code.unwrap_or("error").to_owned()));
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(kind: EventKind, at: u64) -> Event {
        let mut e = Event::new(kind, at);
        e.code = Some("server_error");
        e
    }

    #[test]
    fn counts_mints_per_hour_for_48_hours() {
        let mut l = Ledger::default();
        let t0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS;
        assert!(l.record(&at(EventKind::Mint, t0 + 5)));
        assert!(l.record(&at(EventKind::Mint, t0 + 10)));
        assert!(l.record(&at(EventKind::Mint, t0 + HOUR_MS)));
        assert_eq!(l.mints_per_hour, VecDeque::from([(t0, 2), (t0 + HOUR_MS, 1)]));
        assert!(!l.record(&at(EventKind::Refresh, t0 + HOUR_MS)));
        assert!(l.record(&at(EventKind::TokenError, t0 + HOUR_MS + 1)));
        assert_eq!(l.last_failure, Some((t0 + HOUR_MS + 1, "server_error".into())));
        // 48 hours later the first hour is gone
        l.record(&at(EventKind::Mint, t0 + 48 * HOUR_MS));
        assert_eq!(l.mints_per_hour.front(), Some(&(t0 + HOUR_MS, 1)));
        assert_eq!(l.last_mint, Some(t0 + 48 * HOUR_MS));
    }
}
