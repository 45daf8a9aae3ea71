//! The flight: the one run of store reads, lock claims and token requests under way for a
//! cache key — its steps and their deadlines, who owns it and who waits, how long to keep
//! polling a lock someone else holds, and when a failed attempt is tried again.

use crate::error::Error;
use crate::lifecycle::{LOCK_GRACE_MS, Policy};

/// A process that lost the minting lock looks for the winner's token after this long…
pub const MINT_POLL_MIN_MS: u64 = 50;
/// …doubling up to this.
pub const MINT_POLL_MAX_MS: u64 = 500;

/// Why a flight runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// There is no usable token.
    Obtain,
    /// There is one, but it is stale or a caller asked to replace it.
    Renew,
}

/// What a pause leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Then {
    /// Read the store (looking for the lock holder's token, or trying a failing store again).
    Read,
    /// Claim the minting lock again (after a failing claim).
    Claim,
    /// The next attempt of a failed mint.
    Mint,
    /// The double check under the lock again (after a failing one).
    Recheck,
}

/// Where the flight is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Not begun: the owner's next `want` begins it.
    Start,
    /// Waiting for a store read made without the lock.
    Reading,
    /// Waiting for a lock claim (`retried` after a failing first claim).
    Claiming { retried: bool },
    /// Waiting for the read made under the lock (the double check).
    Rechecking,
    /// Waiting for the token source.
    Minting,
    /// Nothing to do before `at`.
    Pause { at: u64, then: Then },
}

/// The flight under way.
#[derive(Clone, Debug)]
pub(crate) struct Flight {
    pub(crate) id: u64,
    pub(crate) purpose: Purpose,
    pub(crate) step: Step,
    /// The token this flight replaces (held, expired or refused), for the token source…
    pub(crate) replacing: Option<String>,
    /// …and when it was issued, if it is the one held (a renewal takes a newer one).
    pub(crate) replacing_issued: Option<u64>,
    /// Past this, the flight is dead: its I/O will never report.
    pub(crate) deadline: u64,
    /// While the lock is someone else's: the next wait, and when to stop waiting.
    lock_wait: Option<(u64, u64)>,
    /// When to stop trying an unreachable store ([`crate::StoreOutage::Fail`]).
    outage_until: Option<u64>,
    /// Token requests this flight has made, when the first and the last were sent.
    attempts: u32,
    mint_started: u64,
    pub(crate) last_attempt: u64,
    /// When the last lock claim was sent: the lock lives from then, at the most.
    pub(crate) claim_sent: u64,
    /// The store could not be reached and this flight mints alone: its token requests are
    /// this instance's, never the fleet's budget.
    pub(crate) alone: bool,
}

impl Flight {
    /// The next look for the lock holder's token, or `None` once the lock's whole life has
    /// passed (a waiter never mints without the lock).
    pub(crate) fn poll_lock(&mut self, now: u64, policy: &Policy) -> Option<u64> {
        let (wait, give_up_at) = self
            .lock_wait
            .unwrap_or((MINT_POLL_MIN_MS, now + policy.lock_ttl_ms() + LOCK_GRACE_MS));
        if now >= give_up_at {
            return None;
        }
        self.lock_wait = Some(((wait * 2).min(MINT_POLL_MAX_MS), give_up_at));
        Some((now + wait).min(give_up_at))
    }

    /// The next read of a store that does not answer, or `None` once `store_wait_ms` passed
    /// (a renewal does not wait: the held token is served).
    pub(crate) fn poll_outage(&mut self, now: u64, policy: &Policy) -> Option<u64> {
        let until = *self.outage_until.get_or_insert(now + policy.store_wait_ms);
        if now >= until || self.purpose == Purpose::Renew {
            return None;
        }
        Some((now + MINT_POLL_MAX_MS).min(until))
    }

    /// The double check under the lock could not read the store. It is not "nothing stored":
    /// it is tried again for `store_wait_ms` of its own; a renewal gives up at once (and backs
    /// off, freeing the lock); only after the wait does the holder mint without it.
    pub(crate) fn recheck_failed(&mut self, now: u64, policy: &Policy) -> Recheck {
        if let Some(at) = self.poll_outage(now, policy) {
            return Recheck::Again(at);
        }
        if self.purpose == Purpose::Renew {
            return Recheck::GiveUp(Error::StoreUnavailable {
                reason: "the store could not be read under the lock".into(),
            });
        }
        Recheck::MintWithout
    }

    /// The minting lock was taken: the double check under it gets a `store_wait_ms` of its
    /// own — failures of the store before the lock do not shorten it, or a holder would mint
    /// past a token its predecessor stored, because the reads before the lock had failed.
    pub(crate) fn locked(&mut self) {
        self.outage_until = None;
    }

    /// A token request begins.
    pub(crate) fn attempt(&mut self, now: u64) {
        if self.attempts == 0 {
            self.mint_started = now;
        }
        self.attempts += 1;
        self.last_attempt = now;
    }

    /// When to try a failed token request again: only for a flight that callers wait on
    /// (`Obtain`; a renewal has its own backoff while the held token is served), only for
    /// faults that may pass (5xx without `Retry-After`, network, timeout), only while attempts
    /// are left and the next attempt can end within the mint's deadline (jittered by `rng`).
    pub(crate) fn retry_at(&self, now: u64, policy: &Policy, e: &Error, rng: &mut Rng) -> Option<u64> {
        let passing = matches!(e, Error::Network { .. } | Error::Timeout { .. })
            || matches!(e, Error::Server(s) if s.retry_after.is_none());
        if self.purpose != Purpose::Obtain || !passing || self.attempts >= policy.mint_attempts {
            return None;
        }
        let at = now + policy.retry_wait(self.attempts, rng.unit());
        let ends = at + policy.request_timeout_ms;
        (ends <= self.mint_started + policy.mint_deadline_ms).then_some(at)
    }
}

/// The flight under way (at most one), the last that ended, and their count.
#[derive(Clone, Debug, Default)]
pub(crate) struct Flights {
    current: Option<Flight>,
    count: u64,
    /// The last flight that ended, and its error if it failed.
    landed: Option<(u64, Option<Error>)>,
    /// A flight ended since the host last asked.
    just_landed: bool,
}

impl Flights {
    /// The flight under way.
    pub(crate) fn current(&self) -> Option<&Flight> {
        self.current.as_ref()
    }

    /// The flight under way, which there is.
    pub(crate) fn current_mut(&mut self) -> &mut Flight {
        self.current.as_mut().expect("a flight is under way")
    }

    /// The flight under way, if it is `id`.
    pub(crate) fn running(&self, id: u64) -> Option<&Flight> {
        self.current.as_ref().filter(|f| f.id == id)
    }

    /// Opens a flight for `purpose`, replacing `replacing` (issued at `replacing_issued`).
    pub(crate) fn open(
        &mut self,
        now: u64,
        policy: &Policy,
        purpose: Purpose,
        replacing: Option<String>,
        replacing_issued: Option<u64>,
    ) -> u64 {
        self.count += 1;
        self.current = Some(Flight {
            id: self.count,
            purpose,
            step: Step::Start,
            replacing,
            replacing_issued,
            deadline: now + step_bound(policy),
            lock_wait: None,
            outage_until: None,
            attempts: 0,
            mint_started: now,
            last_attempt: now,
            claim_sent: now,
            alone: false,
        });
        self.count
    }

    /// Moves the flight to `step`, with the deadline that step allows.
    pub(crate) fn step(&mut self, now: u64, policy: &Policy, step: Step) {
        let wait = match step {
            Step::Pause { at, .. } => at.saturating_sub(now),
            _ => 0,
        };
        let f = self.current_mut();
        f.step = step;
        f.deadline = now + wait + step_bound(policy);
    }

    /// Ends the flight under way (`error`: it failed).
    pub(crate) fn land(&mut self, error: Option<Error>) {
        if let Some(f) = self.current.take() {
            self.landed = Some((f.id, error));
            self.just_landed = true;
        }
    }

    /// A flight past its deadline is forgotten as dead: its I/O was cancelled.
    pub(crate) fn expire(&mut self, now: u64) {
        if self.current.as_ref().is_some_and(|f| now >= f.deadline) {
            self.land(None);
        }
    }

    /// The error flight `id` ended with, if it was the last to end and failed.
    pub(crate) fn failed(&self, id: u64) -> Option<&Error> {
        match &self.landed {
            Some((l, Some(e))) if *l == id => Some(e),
            _ => None,
        }
    }

    /// Whether a flight ended since the last call.
    pub(crate) fn take_landed(&mut self) -> bool {
        std::mem::take(&mut self.just_landed)
    }
}

/// How long one step's I/O may take before the flight counts as dead.
fn step_bound(policy: &Policy) -> u64 {
    policy.request_timeout_ms + LOCK_GRACE_MS
}

/// What a holder does after its double check under the lock failed.
pub(crate) enum Recheck {
    /// Read again at this instant.
    Again(u64),
    /// End the flight with this error (a renewal).
    GiveUp(Error),
    /// The wait is over: mint without the double check.
    MintWithout,
}

/// The generator behind retry jitter (xorshift64*), deterministic per instance.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn seeded(seed: f64) -> Self {
        Self((seed.to_bits() ^ 0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A number in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiter_polls_the_lock_doubling_then_gives_up_after_its_life() {
        let p = Policy::default();
        let mut fl = Flights::default();
        fl.open(0, &p, Purpose::Obtain, None, None);
        let f = fl.current_mut();
        assert_eq!(f.poll_lock(0, &p), Some(MINT_POLL_MIN_MS));
        assert_eq!(f.poll_lock(50, &p), Some(50 + 2 * MINT_POLL_MIN_MS));
        let give_up = p.lock_ttl_ms() + LOCK_GRACE_MS;
        assert_eq!(f.poll_lock(give_up, &p), None);
    }

    #[test]
    fn only_passing_faults_of_an_obtain_are_retried_within_the_deadline() {
        let p = Policy::default();
        let mut fl = Flights::default();
        fl.open(0, &p, Purpose::Obtain, None, None);
        let f = fl.current_mut();
        f.attempt(0);
        let network = Error::Network {
            host: "h".into(),
            message: "reset".into(),
        };
        assert!(f.retry_at(1, &p, &network, &mut Rng::seeded(0.5)).is_some());
        let denied = Error::MintBudgetExhausted { retry_after: 1 };
        assert!(f.retry_at(1, &p, &denied, &mut Rng::seeded(0.5)).is_none());
        assert!(
            f.retry_at(p.mint_deadline_ms, &p, &network, &mut Rng::seeded(0.5))
                .is_none()
        );
    }

    #[test]
    fn a_flight_past_its_deadline_lands_dead() {
        let p = Policy::default();
        let mut fl = Flights::default();
        let id = fl.open(0, &p, Purpose::Obtain, None, None);
        fl.expire(step_bound(&p));
        assert!(fl.running(id).is_none());
        assert!(fl.take_landed() && !fl.take_landed());
        assert!(fl.failed(id).is_none(), "dead, not failed");
    }
}
