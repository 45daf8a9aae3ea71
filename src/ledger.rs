//! The minting authority's ledger, so an operator sees at a glance that the fleet mints about
//! one token per lifetime: mints per hour for the last 48 hours, the last mint and the last
//! failure. Kept by the Durable Object in its storage; shown in the keyed `/healthz`.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Event, EventKind};

/// Hours kept.
pub const LEDGER_HOURS: usize = 48;
/// Failures kept, the latest last.
pub const LEDGER_FAILURES: usize = 10;
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
    /// The last [`LEDGER_FAILURES`] failures, `[when, code]`, oldest first.
    #[serde(default)]
    pub failures: VecDeque<(u64, String)>,
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
                let failure = (event.at, event.code.unwrap_or("error").to_owned());
                if self.failures.len() == LEDGER_FAILURES {
                    self.failures.pop_front();
                }
                self.failures.push_back(failure.clone());
                self.last_failure = Some(failure);
                true
            }
            _ => false,
        }
    }
}

impl Ledger {
    /// Reads a stored ledger (its JSON), field by field; anything malformed is `None` (the
    /// ledger then starts afresh).
    pub fn decode(json: &str) -> Option<Self> {
        let v: Value = serde_json::from_str(json).ok()?;
        let o = v.as_object()?;
        let hours = o.get("mints_per_hour")?.as_array()?;
        let mints_per_hour = hours
            .iter()
            .map(|h| match h.as_array()?.as_slice() {
                [hour, n] => Some((hour.as_u64()?, u32::try_from(n.as_u64()?).ok()?)),
                _ => None,
            })
            .collect::<Option<VecDeque<_>>>()?;
        let last_mint = match o.get("last_mint") {
            None | Some(Value::Null) => None,
            Some(t) => Some(t.as_u64()?),
        };
        let last_failure = match o.get("last_failure") {
            None | Some(Value::Null) => None,
            Some(f) => match f.as_array()?.as_slice() {
                [at, code] => Some((at.as_u64()?, code.as_str()?.to_owned())),
                _ => return None,
            },
        };
        // absent in a ledger stored before it was kept
        let failures = match o.get("failures") {
            None => VecDeque::new(),
            Some(list) => list
                .as_array()?
                .iter()
                .map(|f| match f.as_array()?.as_slice() {
                    [at, code] => Some((at.as_u64()?, code.as_str()?.to_owned())),
                    _ => None,
                })
                .collect::<Option<VecDeque<_>>>()?,
        };
        Some(Self {
            mints_per_hour,
            last_mint,
            last_failure,
            failures,
        })
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
        assert_eq!(
            l.failures,
            VecDeque::from([(t0 + HOUR_MS + 1, "server_error".into())])
        );
        // 48 hours later the first hour is gone
        l.record(&at(EventKind::Mint, t0 + 48 * HOUR_MS));
        assert_eq!(l.mints_per_hour.front(), Some(&(t0 + HOUR_MS, 1)));
        assert_eq!(l.last_mint, Some(t0 + 48 * HOUR_MS));
        // stored as JSON and read back field by field
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(Ledger::decode(&json), Some(l));
        assert_eq!(
            Ledger::decode(&serde_json::to_string(&Ledger::default()).unwrap()),
            Some(Ledger::default())
        );
        for bad in [
            "",
            "[]",
            r#"{"mints_per_hour":[[1]]}"#,
            r#"{"mints_per_hour":[],"last_failure":[1]}"#,
            r#"{"mints_per_hour":[],"failures":[[1]]}"#,
        ] {
            assert_eq!(Ledger::decode(bad), None, "{bad}");
        }
        // a ledger stored before failures were kept still reads
        let old = r#"{"mints_per_hour":[],"last_mint":null,"last_failure":[5,"rate_limited"]}"#;
        assert_eq!(
            Ledger::decode(old).unwrap().last_failure,
            Some((5, "rate_limited".into()))
        );
    }

    #[test]
    fn keeps_the_last_ten_failures() {
        let mut l = Ledger::default();
        for i in 0..15 {
            l.record(&at(EventKind::TokenError, i));
        }
        assert_eq!(l.failures.len(), LEDGER_FAILURES);
        assert_eq!(l.failures.front().map(|f| f.0), Some(5));
        assert_eq!(l.failures.back().map(|f| f.0), Some(14));
    }
}
