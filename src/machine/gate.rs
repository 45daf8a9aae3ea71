//! The one answer to "may a token request be made now?": a cooldown (rate limited, or the
//! mint budget spent), a hold (the credentials or the request were refused; each doubles) and
//! a backoff (after failures that may pass). Kept per instance, and shared with the fleet as
//! the [`Gate`] stored beside the record.

use crate::error::{Error, ServerError};
use crate::fleet::{Gate as FleetGate, GateKind};
use crate::lifecycle::{Policy, refresh_backoff_ms};

use super::flight::Purpose;

/// The gate of one instance.
#[derive(Clone, Debug, Default)]
pub(crate) struct Gate {
    /// No token request before this instant: a rate limit's cooldown, and its error.
    cooldown: Option<(u64, Error)>,
    /// No token request before this instant: a refusal's hold, and its error…
    hold: Option<(u64, Error)>,
    /// …and how many holds in a row (each doubles).
    holds: u32,
    /// Failures in a row, and the instant before which none is tried again…
    failures: u32,
    retry_at: u64,
    /// …and the error callers get meanwhile (none after a renewal that failed without one:
    /// the held token is served, and only renewals wait).
    error: Option<Error>,
    /// No token request before this instant: a local failure (nothing was sent — no signer,
    /// a key the platform refuses), with its error, and how many in a row (each doubles).
    /// This instance's alone: never shared with the fleet.
    local: Option<(u64, Error)>,
    locals: u32,
}

impl Gate {
    /// Why no token request may be made now, if one may not: a cooldown (its error with the
    /// seconds left), a hold, or the backoff after a failed flight.
    pub(crate) fn admit(&self, now: u64) -> Result<(), Error> {
        if let Some((until, e)) = self.cooldown.as_ref().filter(|(until, _)| now < *until) {
            let left = (until - now).div_ceil(1000);
            return Err(match e {
                Error::RateLimited(s) | Error::Server(s) => Error::RateLimited(ServerError {
                    retry_after: Some(left),
                    ..s.clone()
                }),
                _ => Error::MintBudgetExhausted { retry_after: left },
            });
        }
        if let Some((_, e)) = self.hold.as_ref().filter(|(until, _)| now < *until) {
            return Err(e.clone());
        }
        if let Some((_, e)) = self.local.as_ref().filter(|(until, _)| now < *until) {
            return Err(e.clone());
        }
        match &self.error {
            Some(e) if now < self.retry_at => Err(e.clone()),
            _ => Ok(()),
        }
    }

    /// Whether a renewal of a token still held may start now: admitted, and not backing off.
    pub(crate) fn admits_renewal(&self, now: u64) -> bool {
        now >= self.retry_at && self.admit(now).is_ok()
    }

    /// Whether renewals wait (a backoff is on), whatever the rest of the gate says.
    pub(crate) fn backing_off(&self, now: u64) -> bool {
        now < self.retry_at
    }

    /// The instant a backoff ends, if one is on.
    pub(crate) fn backoff_ends(&self, now: u64) -> Option<u64> {
        (self.retry_at > now).then_some(self.retry_at)
    }

    /// A flight failed with `e` after asking: a cooldown (rate limited), a hold (refused), and
    /// a backoff, so that the next callers get the error, not a token request. A cooldown it
    /// starts is returned with its length, for the event.
    pub(crate) fn on_failure(
        &mut self,
        now: u64,
        policy: &Policy,
        purpose: Purpose,
        e: &Error,
    ) -> Option<u64> {
        let cooled = match e {
            Error::RateLimited(s) | Error::Server(s)
                if e.code() == crate::code::RATE_LIMITED || s.retry_after.is_some() =>
            {
                Some(self.cool(now, policy.cooldown(s.retry_after), e))
            }
            // a budget's or a declared quota's wait is this library's own reckoning (a minting
            // authority's, say), never a vendor's whim: kept whole, not capped like a Retry-After
            Error::MintBudgetExhausted { retry_after } => Some(self.cool(now, retry_after * 1000, e)),
            Error::AccessDenied(_) | Error::InvalidRequest(_) | Error::InvalidResponse { .. } => {
                self.holds += 1;
                self.hold = Some((now + policy.hold_after(self.holds), e.clone()));
                None
            }
            _ => None,
        };
        match purpose {
            Purpose::Renew => self.renewal_failed(now, e.retry_after()),
            Purpose::Obtain => {
                self.failures += 1;
                self.retry_at = now + refresh_backoff_ms(self.failures, None);
            }
        }
        self.error = Some(e.clone());
        cooled
    }

    /// A token request failed here before anything was sent (see [`Error::is_local`]): this
    /// instance holds (doubling), and nothing of it reaches the fleet's gate.
    pub(crate) fn on_local_failure(&mut self, now: u64, policy: &Policy, e: &Error) {
        self.locals += 1;
        self.local = Some((now + policy.hold_after(self.locals), e.clone()));
    }

    /// A renewal failed without a token request's error (the held token is still served):
    /// renewals back off.
    pub(crate) fn renewal_failed(&mut self, now: u64, retry_after_secs: Option<u64>) {
        self.failures += 1;
        self.retry_at = now + refresh_backoff_ms(self.failures, retry_after_secs);
    }

    /// A token was obtained: the backoff and the holds' count end.
    pub(crate) fn on_success(&mut self) {
        self.failures = 0;
        self.retry_at = 0;
        self.holds = 0;
        self.locals = 0;
        self.error = None;
    }

    /// The user says something changed: the hold and the backoff end (a cooldown is the
    /// token endpoint's word, and stays).
    pub(crate) fn clear(&mut self) {
        self.hold = None;
        self.local = None;
        self.locals = 0;
        self.error = None;
        self.retry_at = 0;
        self.holds = 0;
    }

    /// Closes the gate for `ms` with `error` (a cooldown); returns `ms`.
    fn cool(&mut self, now: u64, ms: u64, error: &Error) -> u64 {
        self.cooldown = Some((now + ms, error.clone()));
        ms
    }

    /// The mint budget is spent until `until`: a cooldown, so that nobody asks before.
    pub(crate) fn spent(&mut self, until: u64, error: Error) {
        self.cooldown = Some((until, error));
    }

    /// A gate the fleet keeps, still closed: taken here too where it ends later than this
    /// instance's own. A cooldown taken is returned with its length, for the event.
    pub(crate) fn adopt<'g>(&mut self, now: u64, g: &'g FleetGate) -> Option<(u64, &'g Error)> {
        if g.until_ms <= now {
            return None;
        }
        match g.kind {
            GateKind::Cooldown => {
                if self
                    .cooldown
                    .as_ref()
                    .is_none_or(|(until, _)| *until < g.until_ms)
                {
                    return Some((self.cool(now, g.until_ms - now, &g.error), &g.error));
                }
            }
            GateKind::Hold => {
                if self.hold.as_ref().is_none_or(|(until, _)| *until < g.until_ms) {
                    self.hold = Some((g.until_ms, g.error.clone()));
                }
                self.holds = self.holds.max(g.repeats);
            }
            GateKind::Backoff => {
                if self.retry_at < g.until_ms {
                    self.retry_at = g.until_ms;
                    self.error = Some(g.error.clone());
                }
                self.failures = self.failures.max(g.repeats);
            }
        }
        None
    }

    /// The gate to share with the fleet, if one is closed: the cooldown, else the hold, else
    /// a backoff with its error.
    pub(crate) fn closed(&self, now: u64) -> Option<FleetGate> {
        let (kind, until_ms, repeats, e) =
            if let Some((until, e)) = self.cooldown.as_ref().filter(|(u, _)| *u > now) {
                (GateKind::Cooldown, *until, 1, e)
            } else if let Some((until, e)) = self.hold.as_ref().filter(|(u, _)| *u > now) {
                (GateKind::Hold, *until, self.holds, e)
            } else {
                let e = self.error.as_ref().filter(|_| self.retry_at > now)?;
                (GateKind::Backoff, self.retry_at, self.failures, e)
            };
        Some(FleetGate {
            kind,
            until_ms,
            repeats,
            error: e.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ServerError;

    fn denied() -> Error {
        Error::AccessDenied(ServerError {
            status: 401,
            error: Some("invalid_client".into()),
            description: None,
            retry_after: None,
        })
    }

    #[test]
    fn a_hold_answers_until_it_ends_and_doubles_on_repeat() {
        let (p, mut g) = (Policy::default(), Gate::default());
        g.on_failure(0, &p, Purpose::Obtain, &denied());
        assert_eq!(g.admit(1).unwrap_err().code(), denied().code());
        let first = p.hold_after(1);
        assert!(g.admit(first).is_ok() || g.backing_off(first));
        g.on_failure(first, &p, Purpose::Obtain, &denied());
        assert_eq!(g.closed(first).unwrap().repeats, 2);
        g.clear();
        assert!(g.admit(first + 1).is_ok(), "cleared by the user");
    }

    #[test]
    fn a_renewal_without_an_error_backs_off_renewals_only() {
        let mut g = Gate::default();
        g.renewal_failed(0, None);
        assert!(g.admit(1).is_ok(), "callers without a token may still ask");
        assert!(!g.admits_renewal(1));
        assert!(g.closed(1).is_none(), "nothing for the fleet: no error to share");
        g.on_success();
        assert!(g.admits_renewal(1));
    }

    #[test]
    fn a_spent_budget_answers_with_the_seconds_left() {
        let mut g = Gate::default();
        g.spent(10_500, Error::MintBudgetExhausted { retry_after: 11 });
        match g.admit(500) {
            Err(Error::MintBudgetExhausted { retry_after }) => assert_eq!(retry_after, 10),
            other => panic!("{other:?}"),
        }
        assert!(g.admit(10_500).is_ok());
        // an authority's refusal for an hour (a declared quota's reset) is kept whole, where a
        // vendor's Retry-After is capped
        let p = Policy::default();
        g.on_failure(
            0,
            &p,
            Purpose::Obtain,
            &Error::MintBudgetExhausted { retry_after: 3_600 },
        );
        assert_eq!(g.admit(1_000_000).unwrap_err().retry_after(), Some(2_600));
    }

    #[test]
    fn a_local_failure_holds_this_instance_and_never_the_fleet() {
        let (p, mut g) = (Policy::default(), Gate::default());
        let e = Error::config(crate::field::PRIVATE_KEY, "cannot be used here");
        g.on_local_failure(0, &p, &e);
        assert_eq!(g.admit(1).unwrap_err().code(), "invalid_config");
        assert!(g.closed(1).is_none(), "nothing for the fleet");
        g.on_local_failure(p.hold_after(1), &p, &e);
        assert!(g.admit(p.hold_after(1) + p.hold_after(1)).is_err(), "doubles");
    }
}
