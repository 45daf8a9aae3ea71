//! The minting lock, as one call holds it: taken by a claim, good for the lock's life less the
//! longest mint (past that it may be another's, and no token request leaves without claiming
//! it again), released only after every write succeeded — a token or a failure the fleet cannot
//! read must not invite the waiters in; the lock then expires by itself.

use crate::lifecycle::Policy;

/// Whether a call holds the shared store's minting lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lock {
    /// Not held.
    No,
    /// Held until `until` (the claim's send time plus the lock's life, by this instance's
    /// clock): released once the token (or the failure) is written. Past `until` it may be
    /// another's: no token request is sent without claiming it again.
    Held { until: u64 },
    /// Its release is under way.
    Releasing,
}

impl Lock {
    /// Taken by a claim sent at `claim_sent`.
    pub(super) fn taken(claim_sent: u64, policy: &Policy) -> Self {
        Lock::Held {
            until: claim_sent + policy.lock_ttl_ms(),
        }
    }

    /// Whether it is held (its release not begun).
    pub(super) fn held(self) -> bool {
        matches!(self, Lock::Held { .. })
    }

    /// Whether a token request may leave under it now: not held at all, or held for longer than
    /// the longest mint. A lock whose life has passed (this process was paused, its clock
    /// jumped) is forgotten: it may be another's, and must be claimed again.
    pub(super) fn fences(&mut self, now: u64, policy: &Policy) -> bool {
        if let Lock::Held { until } = *self
            && now + policy.mint_bound_ms() > until
        {
            *self = Lock::No;
            return true;
        }
        false
    }

    /// The flight landed: a held lock is to be released now (`true`: send the unlock).
    pub(super) fn release(&mut self) -> bool {
        if self.held() {
            *self = Lock::Releasing;
            return true;
        }
        false
    }

    /// The writes after a flight came back: released only when every one succeeded (`true`:
    /// send the unlock); after a failed write it is kept, to expire by itself.
    pub(super) fn saved(&mut self, written: bool) -> bool {
        match *self {
            Lock::Held { .. } if written => {
                *self = Lock::Releasing;
                true
            }
            Lock::Held { .. } | Lock::Releasing => {
                *self = Lock::No;
                false
            }
            Lock::No => false,
        }
    }

    /// A token the store cannot take (too short-lived for its shortest TTL): the lock is kept
    /// until it expires, so the waiters do not mint another.
    pub(super) fn keep_to_expiry(&mut self) {
        if self.held() {
            *self = Lock::No;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_fences_its_token_requests_and_is_freed_only_after_every_write() {
        let policy = Policy::default();
        let mut lock = Lock::taken(1_000, &policy);
        let until = 1_000 + policy.lock_ttl_ms();
        assert!(!lock.fences(1_000, &policy), "fresh: a token request may leave");
        assert!(
            lock.fences(until - policy.mint_bound_ms() + 1, &policy),
            "too old to outlast a mint"
        );
        assert_eq!(lock, Lock::No, "forgotten: claimed again before any request");
        let mut lock = Lock::taken(0, &policy);
        assert!(!lock.saved(false), "a failed write keeps it to expire");
        assert_eq!(lock, Lock::No);
        let mut lock = Lock::taken(0, &policy);
        assert!(lock.saved(true));
        assert_eq!(lock, Lock::Releasing);
        assert!(!lock.release(), "a release under way is not sent twice");
        let mut lock = Lock::taken(0, &policy);
        lock.keep_to_expiry();
        assert!(!lock.release(), "kept to expire: never unlocked");
    }
}
