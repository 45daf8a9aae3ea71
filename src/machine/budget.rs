//! The mint budget: how many token requests one window may see (sized by the tokens'
//! lifetime), counted across restarts (a kept [`BudgetWindow`]) and across the fleet (the
//! window stored beside the record is merged).

use std::collections::VecDeque;

use crate::error::Error;
use crate::fleet::{merge_sent, merge_sorted};
use crate::lifecycle::Policy;

/// The mint budget's window as plain data, for a host that keeps it across restarts (the
/// Worker's Durable Object stores it, so a restart storm cannot reset the budget).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BudgetWindow {
    /// When each token request in the window was sent (ms since the epoch), oldest first.
    pub sent: Vec<u64>,
    /// The lifetime of the last token granted, which sizes the budget.
    pub lifetime_ms: Option<u64>,
}

impl BudgetWindow {
    /// Reads a kept window (its JSON), field by field; anything malformed is `None`.
    pub fn decode(json: &str) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(json).ok()?;
        let o = v.as_object()?;
        let sent = o
            .get("sent")?
            .as_array()?
            .iter()
            .map(serde_json::Value::as_u64)
            .collect::<Option<Vec<u64>>>()?;
        let lifetime_ms = match o.get("lifetime_ms") {
            None | Some(serde_json::Value::Null) => None,
            Some(l) => Some(l.as_u64()?),
        };
        Some(Self { sent, lifetime_ms })
    }
}

/// The token requests of the window, and the lifetime that sizes it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Budget {
    /// When each token request in the window was sent, oldest first: the fleet's (published
    /// beside the record, merged from it)…
    sent: VecDeque<u64>,
    /// …and this instance's alone, made while the store could not be reached: they count
    /// here, and are never published — so an outage never locks the fleet out afterwards.
    alone: VecDeque<u64>,
    /// The lifetime of the last token granted.
    lifetime: Option<u64>,
}

impl Budget {
    /// Counts a token request at `now`, or refuses it when the window's are spent: then the
    /// error, and the instant the window allows one again.
    /// `alone`: the request is this instance's only (the store cannot be reached).
    pub(crate) fn spend(&mut self, now: u64, policy: &Policy, alone: bool) -> Result<(), (u64, Error)> {
        let window = policy.budget_window_ms;
        for list in [&mut self.sent, &mut self.alone] {
            while list.front().is_some_and(|t| now >= t + window) {
                list.pop_front();
            }
        }
        if (self.sent.len() + self.alone.len()) as u64 >= policy.mint_budget(self.lifetime) {
            let oldest = self.sent.front().into_iter().chain(self.alone.front()).min();
            let until = oldest.copied().unwrap_or(now) + window;
            let retry_after = (until - now).div_ceil(1000);
            return Err((until, Error::MintBudgetExhausted { retry_after }));
        }
        if alone {
            self.alone.push_back(now);
        } else {
            self.sent.push_back(now);
        }
        Ok(())
    }

    /// The request counted at `at` was never sent (a local failure): it is taken back.
    pub(crate) fn refund(&mut self, at: u64) {
        for list in [&mut self.sent, &mut self.alone] {
            if let Some(i) = list.iter().rposition(|t| *t == at) {
                list.remove(i);
                return;
            }
        }
    }

    /// The lifetime of the last token granted.
    pub(crate) fn lifetime(&self) -> Option<u64> {
        self.lifetime
    }

    /// A token of `lifetime_ms` was granted.
    pub(crate) fn granted(&mut self, lifetime_ms: u64) {
        self.lifetime = Some(lifetime_ms);
    }

    /// The requests still in the window at `now`, oldest first.
    pub(crate) fn live(&self, now: u64, policy: &Policy) -> Vec<u64> {
        let window = policy.budget_window_ms;
        self.sent.iter().copied().filter(|t| now < t + window).collect()
    }

    /// Merges the fleet's window (read from the store) into this one.
    pub(crate) fn adopt(&mut self, now: u64, policy: &Policy, sent: &[u64], lifetime_ms: Option<u64>) {
        let window = policy.budget_window_ms;
        let live = |t: &u64| now < t + window;
        self.sent = merge_sent(
            self.sent.iter().copied().filter(live),
            sent.iter().copied().filter(live),
        )
        .into();
        if lifetime_ms.is_some() {
            self.lifetime = lifetime_ms;
        }
    }

    /// The window now, to keep across restarts (this instance's requests alone included).
    pub(crate) fn window(&self) -> BudgetWindow {
        BudgetWindow {
            sent: merge_sorted(self.sent.iter().copied(), self.alone.iter().copied()),
            lifetime_ms: self.lifetime,
        }
    }

    /// Takes back a window kept from before a restart: its requests count as if this instance
    /// had made them (later and duplicate entries are kept in order).
    pub(crate) fn restore(&mut self, kept: &BudgetWindow) {
        // a kept window out of order is not one of ours: only this instance's requests count
        let kept_sent = if kept.sent.is_sorted() {
            &kept.sent[..]
        } else {
            &[]
        };
        self.sent = merge_sorted(kept_sent.iter().copied(), self.sent.iter().copied()).into();
        self.lifetime = self.lifetime.or(kept.lifetime_ms);
    }

    /// Token requests in the window (this instance's alone included), and the budget, at `now`.
    pub(crate) fn usage(&self, now: u64, policy: &Policy) -> (u64, u64) {
        let alone = self
            .alone
            .iter()
            .filter(|t| now < *t + policy.budget_window_ms)
            .count();
        (
            (self.live(now, policy).len() + alone) as u64,
            policy.mint_budget(self.lifetime),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refuses_past_its_size_until_the_oldest_leaves_the_window() {
        let p = Policy::default();
        let mut b = Budget::default();
        let size = p.mint_budget(None);
        for i in 0..size {
            b.spend(i, &p, false).unwrap();
        }
        let (until, e) = b.spend(size, &p, false).unwrap_err();
        assert_eq!(until, p.budget_window_ms);
        assert_eq!(e.retry_after(), Some((p.budget_window_ms - size).div_ceil(1000)));
        assert!(
            b.spend(p.budget_window_ms, &p, false).is_ok(),
            "the oldest left the window"
        );
    }

    #[test]
    fn a_kept_window_out_of_order_is_not_taken() {
        let mut b = Budget::default();
        b.restore(&BudgetWindow {
            sent: vec![5, 1],
            lifetime_ms: Some(60_000),
        });
        assert!(b.window().sent.is_empty());
        assert_eq!(b.lifetime(), Some(60_000));
    }

    #[test]
    fn requests_made_alone_count_here_and_are_never_published() {
        let p = Policy::default();
        let mut b = Budget::default();
        b.spend(10, &p, true).unwrap();
        b.spend(20, &p, false).unwrap();
        assert_eq!(
            b.live(30, &p),
            vec![20],
            "only the fleet's requests are published"
        );
        assert_eq!(b.usage(30, &p).0, 2, "both count against this instance's budget");
        b.refund(20);
        assert!(b.live(30, &p).is_empty(), "a request never sent is taken back");
    }
}
