//! The mint budget: how many token requests one window may see (sized by the tokens'
//! lifetime), counted across restarts (a kept [`BudgetWindow`]) and across the fleet (the
//! window stored beside the record is merged).

use std::collections::VecDeque;

use crate::error::Error;
use crate::fleet::{merge_sent, merge_sorted};
use crate::lifecycle::Policy;
use crate::quota::{Declared, MAX_DECLARED};

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
    /// When each token request was sent, oldest first, as far back as a window or a declared
    /// quota counts: the fleet's (published beside the record, merged from it)…
    sent: VecDeque<u64>,
    /// …and this instance's alone, made while the store could not be reached: they count
    /// here, and are never published — so an outage never locks the fleet out afterwards.
    alone: VecDeque<u64>,
    /// The lifetime of the last token granted.
    lifetime: Option<u64>,
    /// The quotas the token endpoint declared, the newest word of each (the fleet's too).
    declared: Vec<Declared>,
}

/// Why the budget refuses a token request: until when, the error, and which limit (for the
/// event: `budget`, `per_hour`, `per_day`, `per_month`, or a declared quota's name).
pub(crate) type Refused = (u64, Error, String);

impl Budget {
    /// Counts a token request at `now`, or refuses it when a window's are spent or a declared
    /// quota has nothing left beyond its reserve: then the instant every one allows a request
    /// again, the error, and the limit.
    /// `alone`: the request is this instance's only (the store cannot be reached).
    pub(crate) fn spend(&mut self, now: u64, policy: &Policy, alone: bool) -> Result<(), Refused> {
        self.prune(now, policy);
        let mut refused: Option<(u64, String)> = None;
        let mut refuse = |until: u64, why: &str| {
            if refused.as_ref().is_none_or(|(u, _)| until > *u) {
                refused = Some((until, why.to_owned()));
            }
        };
        // the storm guard, sized by the tokens' lifetime
        let window = policy.budget_window_ms;
        let base = self.since((now + 1).saturating_sub(window));
        if base.len() as u64 >= policy.mint_budget(self.lifetime) {
            refuse(base.first().copied().unwrap_or(now) + window, "budget");
        }
        // the user's limits
        for limit in &policy.limits {
            let (from, _) = limit.window.span(now, 0);
            let counted = self.since(from);
            if counted.len() as u64 >= limit.max {
                let (_, until) = limit.window.span(now, counted[0]);
                refuse(until, &format!("per_{}", limit.window.as_str()));
            }
        }
        // the vendor's word: what it had left, less what was sent since
        for d in &self.declared {
            if self.left(d) <= d.reserve() {
                refuse(d.reset_ms, &d.name);
            }
        }
        if let Some((until, why)) = refused {
            let retry_after = until.saturating_sub(now).div_ceil(1000).max(1);
            return Err((until, Error::MintBudgetExhausted { retry_after }, why));
        }
        if alone {
            self.alone.push_back(now);
        } else {
            self.sent.push_back(now);
        }
        Ok(())
    }

    /// What a declared quota has left: what it said, less every request sent since.
    fn left(&self, d: &Declared) -> u64 {
        d.remaining.saturating_sub(self.since(d.seen_ms + 1).len() as u64)
    }

    /// Every request (this instance's alone included) sent at `from` or later, oldest first.
    fn since(&self, from: u64) -> Vec<u64> {
        merge_sorted(
            self.sent.iter().copied().filter(|t| *t >= from),
            self.alone.iter().copied().filter(|t| *t >= from),
        )
    }

    /// The first instant any window or live declaration still counts at `now`.
    fn horizon(&self, now: u64, policy: &Policy) -> u64 {
        let base = (now + 1).saturating_sub(policy.budget_window_ms);
        let limits = policy.limits.iter().map(|l| l.window.span(now, 0).0);
        let declared = self
            .declared
            .iter()
            .filter(|d| d.reset_ms > now)
            .map(|d| d.seen_ms);
        limits.chain(declared).fold(base, u64::min)
    }

    /// Forgets what no window counts any more, and declarations past their reset.
    fn prune(&mut self, now: u64, policy: &Policy) {
        self.declared.retain(|d| d.reset_ms > now);
        let from = self.horizon(now, policy);
        for list in [&mut self.sent, &mut self.alone] {
            while list.front().is_some_and(|t| *t < from) {
                list.pop_front();
            }
        }
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

    /// The token endpoint declared quotas: each replaces an older word of the same name.
    /// Returns those that are news (for the events).
    pub(crate) fn learn(&mut self, now: u64, declared: &[Declared]) -> Vec<Declared> {
        let mut news = Vec::new();
        for d in declared.iter().filter(|d| d.reset_ms > now) {
            let full = self.declared.len() >= MAX_DECLARED;
            match self.declared.iter_mut().find(|k| k.name == d.name) {
                Some(known) if known.seen_ms > d.seen_ms || known == d => continue,
                Some(known) => *known = d.clone(),
                None if !full => self.declared.push(d.clone()),
                None => continue,
            }
            news.push(d.clone());
        }
        news
    }

    /// The declarations still in force at `now`, to publish.
    pub(crate) fn declared(&self, now: u64) -> Vec<Declared> {
        self.declared
            .iter()
            .filter(|d| d.reset_ms > now)
            .cloned()
            .collect()
    }

    /// What a declared quota has left at `now`: (name, size, left, reset), for the stats.
    pub(crate) fn quota_left(&self, now: u64) -> Vec<(String, Option<u64>, u64, u64)> {
        self.declared(now)
            .into_iter()
            .map(|d| {
                let left = self.left(&d);
                (d.name, d.limit, left, d.reset_ms)
            })
            .collect()
    }

    /// The requests any window still counts at `now`, oldest first (the fleet's: this
    /// instance's alone are never published).
    pub(crate) fn live(&self, now: u64, policy: &Policy) -> Vec<u64> {
        let from = self.horizon(now, policy);
        self.sent.iter().copied().filter(|t| *t >= from).collect()
    }

    /// Until when the fleet state matters: the last request's longest window, the latest
    /// declared reset.
    pub(crate) fn keep_until(&self, now: u64, policy: &Policy) -> Option<u64> {
        let last = self.sent.back().map(|t| {
            let windows = policy.limits.iter().map(|l| l.window.span(*t, *t).1);
            windows.fold(t + policy.budget_window_ms, u64::max)
        });
        let resets = self.declared(now).into_iter().map(|d| d.reset_ms);
        last.into_iter().chain(resets).max()
    }

    /// Merges the fleet's window and declarations (read from the store) into this one's.
    pub(crate) fn adopt(
        &mut self,
        now: u64,
        policy: &Policy,
        sent: &[u64],
        lifetime_ms: Option<u64>,
        declared: &[Declared],
    ) {
        self.learn(now, declared);
        let from = self.horizon(now, policy);
        let live = |t: &u64| *t >= from;
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

    /// Token requests in the base window (this instance's alone included), and the budget, at
    /// `now`.
    pub(crate) fn usage(&self, now: u64, policy: &Policy) -> (u64, u64) {
        let from = (now + 1).saturating_sub(policy.budget_window_ms);
        (self.since(from).len() as u64, policy.mint_budget(self.lifetime))
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
        let (until, e, why) = b.spend(size, &p, false).unwrap_err();
        assert_eq!(why, "budget");
        assert_eq!(until, p.budget_window_ms);
        assert_eq!(e.retry_after(), Some((p.budget_window_ms - size).div_ceil(1000)));
        assert!(
            b.spend(p.budget_window_ms, &p, false).is_ok(),
            "the oldest left the window"
        );
    }

    #[test]
    fn a_users_limits_count_across_their_windows() {
        use crate::quota::{Limit, month_start, next_month_start};
        let p = Policy {
            limits: vec![Limit::per_hour(3), Limit::per_month(5)],
            ..Policy::default()
        };
        let t0 = 1_796_585_675_000; // 2026-12-06T19:34:35Z
        let mut b = Budget::default();
        for i in 0..3 {
            b.spend(t0 + i, &p, i == 1).unwrap();
        }
        let (until, e, why) = b.spend(t0 + 10, &p, false).unwrap_err();
        assert_eq!((until, why.as_str()), (t0 + 3_600_000, "per_hour"));
        assert_eq!(e.retry_after(), Some(3_600));
        // an hour later the hourly window allows two more, then the month is spent
        let later = t0 + 3_600_001;
        b.spend(later, &p, false).unwrap();
        b.spend(later + 1, &p, false).unwrap();
        let (until, _, why) = b.spend(later + 2, &p, false).unwrap_err();
        assert_eq!((until, why.as_str()), (next_month_start(t0), "per_month"));
        // the month's requests are kept for as long as it counts them, and published
        assert_eq!(b.live(later + 2, &p).first(), Some(&t0));
        assert!(month_start(t0) <= t0);
        assert_eq!(
            b.keep_until(later, &p),
            Some(next_month_start(t0)),
            "the fleet state is kept while the month counts"
        );
        assert!(b.spend(next_month_start(t0), &p, false).is_ok(), "a new month");
    }

    #[test]
    fn a_declared_quota_stops_requests_before_it_runs_out_until_its_reset() {
        let p = Policy::default();
        let mut b = Budget::default();
        let said = |remaining, seen_ms, limit| Declared {
            name: "auth0-client:per_hour".into(),
            limit,
            remaining,
            reset_ms: 1_000_000,
            seen_ms,
        };
        // the answer to the request sent at 10 said 2 left
        b.spend(10, &p, false).unwrap();
        assert_eq!(b.learn(20, &[said(2, 10, Some(3))]).len(), 1);
        b.spend(30, &p, false).unwrap();
        assert_eq!(b.quota_left(31)[0].2, 1, "one sent since it said");
        b.spend(40, &p, true).unwrap();
        let (until, e, why) = b.spend(50, &p, false).unwrap_err();
        assert_eq!((until, why.as_str()), (1_000_000, "auth0-client:per_hour"));
        assert_eq!(e.code(), "mint_budget_exhausted");
        // an older word changes nothing; a newer one replaces it
        assert!(b.learn(60, &[said(9, 5, Some(10))]).is_empty());
        assert_eq!(b.learn(60, &[said(2, 40, Some(100))]).len(), 1);
        assert!(
            b.spend(70, &p, false).is_err(),
            "2 left of 100 is the reserve (2 %)"
        );
        b.learn(80, &[said(1, 40, None)]);
        b.spend(90, &p, false).expect("1 left, no reserve without a size");
        assert!(b.spend(100, &p, false).is_err());
        assert!(b.spend(1_000_000, &p, false).is_ok(), "reset");
        assert!(b.declared(1_000_000).is_empty());
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
