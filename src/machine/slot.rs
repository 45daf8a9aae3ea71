//! The slot: the token this instance holds and where it came from, the last token the API
//! refused, and which stored records to accept.

use std::sync::Arc;

use crate::lifecycle::{Phase, Policy};
use crate::record::TokenRecord;

use super::flight::Purpose;

/// How far ahead of this clock another instance's clock may be: a stored record issued later
/// than that is refused.
pub const CLOCK_SKEW_MS: u64 = 60_000;

/// Where a served token came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// This instance's memory.
    Memory,
    /// The shared store.
    Store,
    /// A token request (made by this call, or by the flight it waited on).
    Network,
}

impl Source {
    /// `memory`, `kv` or `network`, as the JS API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Memory => "memory",
            Source::Store => "kv",
            Source::Network => "network",
        }
    }
}

/// A token handed to a caller.
#[derive(Clone, Debug)]
pub struct Served {
    /// The token.
    pub record: Arc<TokenRecord>,
    /// Where it came from.
    pub source: Source,
}

/// The token held, and the one refused.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    /// This instance's shift of the refresh point, in [-1, 1].
    jitter: f64,
    record: Option<(Arc<TokenRecord>, Source)>,
    /// The last token the API refused: never taken back from a (possibly lagging) store.
    refused: Option<String>,
}

impl Slot {
    pub(crate) fn new(jitter: f64) -> Self {
        Self {
            jitter,
            record: None,
            refused: None,
        }
    }

    /// The phase of `record` for this instance at `now`.
    pub(crate) fn phase(&self, policy: &Policy, record: &TokenRecord, now: u64) -> Phase {
        policy.phase(record, self.jitter, now)
    }

    /// The token held and its phase.
    pub(crate) fn current(&self, policy: &Policy, now: u64) -> Option<(Phase, Arc<TokenRecord>)> {
        let (rec, _) = self.record.as_ref()?;
        Some((self.phase(policy, rec, now), Arc::clone(rec)))
    }

    /// The token held and its timeline (refresh point with this instance's jitter, end of use).
    pub(crate) fn timeline(&self, policy: &Policy) -> Option<(Arc<TokenRecord>, crate::Timeline)> {
        let (rec, _) = self.record.as_ref()?;
        Some((Arc::clone(rec), policy.timeline(rec, self.jitter)))
    }

    /// The token held while fresh, and its refresh point.
    pub(crate) fn lease(&self, policy: &Policy, now: u64) -> Option<(Arc<TokenRecord>, u64)> {
        let (rec, _) = self.record.as_ref()?;
        let until = policy.timeline(rec, self.jitter).refresh_at_ms;
        (now < until).then(|| (Arc::clone(rec), until))
    }

    /// The next instant the token held changes phase by itself.
    pub(crate) fn deadline(&self, policy: &Policy, now: u64) -> Option<u64> {
        let (rec, _) = self.record.as_ref()?;
        let t = policy.timeline(rec, self.jitter);
        [t.refresh_at_ms, t.usable_until_ms]
            .into_iter()
            .find(|&at| at > now)
    }

    /// The token held, if usable now.
    pub(crate) fn usable(&self, policy: &Policy, now: u64) -> Option<(Arc<TokenRecord>, Source)> {
        self.record
            .clone()
            .filter(|(rec, _)| self.phase(policy, rec, now).usable())
    }

    /// When `token` was issued, if it is the one held.
    pub(crate) fn issued_if_held(&self, token: &str) -> Option<u64> {
        self.record
            .as_ref()
            .filter(|(r, _)| r.access_token == token)
            .map(|(r, _)| r.issued_at_ms)
    }

    /// Whether `rec` was issued after the token held (or nothing is held).
    pub(crate) fn newer(&self, rec: &TokenRecord) -> bool {
        self.record
            .as_ref()
            .is_none_or(|(r, _)| r.issued_at_ms < rec.issued_at_ms)
    }

    /// Holds `rec`, from `source`.
    pub(crate) fn keep(&mut self, rec: Arc<TokenRecord>, source: Source) {
        self.record = Some((rec, source));
    }

    /// The API refused `token`: never taken back; dropped if held.
    pub(crate) fn refuse(&mut self, token: &str) {
        if self.issued_if_held(token).is_some() {
            self.record = None;
        }
        self.refused = Some(token.to_owned());
    }

    /// Forgets the token held: it is never taken back from the store.
    pub(crate) fn forget(&mut self) {
        if let Some((rec, _)) = self.record.take() {
            self.refused = Some(rec.access_token.clone());
        }
    }

    /// The token a new flight replaces: the one held (even expired), else the one the caller
    /// holds, else the one refused.
    pub(crate) fn replacing(&self, asked: Option<&str>) -> Option<String> {
        let held = self.record.as_ref().map(|(r, _)| r.access_token.as_str());
        held.or(asked).or(self.refused.as_deref()).map(str::to_owned)
    }

    /// Whether a flight takes a record read from the store: not refused, not from the future,
    /// usable; a renewal takes only one other than the token it replaces, and fresh or issued
    /// after it.
    pub(crate) fn takes(
        &self,
        policy: &Policy,
        now: u64,
        purpose: Purpose,
        replacing: Option<&str>,
        replacing_issued: Option<u64>,
        rec: &TokenRecord,
    ) -> bool {
        let not_refused = self.refused.as_deref() != Some(rec.access_token.as_str());
        // a record "issued" in the future claims more life than its `expires_in` allows
        let not_from_the_future = rec.issued_at_ms <= now + CLOCK_SKEW_MS;
        let phase = self.phase(policy, rec, now);
        let wanted = match purpose {
            Purpose::Obtain => phase.usable(),
            Purpose::Renew => {
                let other = replacing != Some(rec.access_token.as_str());
                let newer = replacing_issued.is_some_and(|t| rec.issued_at_ms > t);
                phase.usable() && other && (phase == Phase::Fresh || newer)
            }
        };
        not_refused && not_from_the_future && wanted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str, issued: u64) -> TokenRecord {
        TokenRecord {
            access_token: name.into(),
            token_type: "Bearer".into(),
            scope: None,
            issued_at_ms: issued,
            expires_at_ms: issued + 3_600_000,
        }
    }

    #[test]
    fn a_refused_or_future_record_is_never_taken() {
        let p = Policy::default();
        let mut s = Slot::new(0.0);
        assert!(s.takes(&p, 1_000, Purpose::Obtain, None, None, &rec("t1", 0)));
        s.refuse("t1");
        assert!(!s.takes(&p, 1_000, Purpose::Obtain, None, None, &rec("t1", 0)));
        let future = rec("t2", 1_000 + CLOCK_SKEW_MS + 1);
        assert!(!s.takes(&p, 1_000, Purpose::Obtain, None, None, &future));
    }

    #[test]
    fn a_renewal_takes_only_another_token_fresh_or_newer() {
        let p = Policy::default();
        let s = Slot::new(0.0);
        let held = rec("t1", 0);
        assert!(!s.takes(&p, 10, Purpose::Renew, Some("t1"), Some(0), &held));
        assert!(s.takes(&p, 10, Purpose::Renew, Some("t1"), Some(0), &rec("t2", 5)));
    }

    #[test]
    fn forgetting_remembers_the_token_as_refused() {
        let mut s = Slot::new(0.0);
        s.keep(Arc::new(rec("t1", 0)), Source::Network);
        s.forget();
        assert_eq!(s.replacing(None).as_deref(), Some("t1"));
        assert!(s.current(&Policy::default(), 1).is_none());
    }
}
