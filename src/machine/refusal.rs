//! The refusal hold: when the API refuses a token minted moments ago, after a replacement
//! for the same reason, minting again will not help. Then the token is kept, its 401 goes back
//! as it is, and nothing is minted for that reason until the hold ends (each doubles).

use crate::lifecycle::Policy;

use super::Refusal;
use super::slot::Slot;

/// How the API's refusals of fresh tokens have gone.
#[derive(Clone, Debug, Default)]
pub(crate) struct RefusalHold {
    /// The last refusal was of a token minted moments before.
    fresh_refused: bool,
    /// Until then a refused token is kept and nothing is minted for that reason…
    until: u64,
    /// …and how many such holds in a row.
    holds: u32,
}

impl RefusalHold {
    /// Whether a hold is on.
    pub(crate) fn holding(&self, now: u64) -> bool {
        now < self.until
    }

    /// The API refused the token held, issued at `issued_at_ms`: `true` when it is kept (a
    /// hold begins), `false` when it is dropped.
    pub(crate) fn keeps(&mut self, now: u64, issued_at_ms: u64, policy: &Policy) -> bool {
        let fresh = now.saturating_sub(issued_at_ms) < policy.fresh_refusal_ms;
        if fresh && self.fresh_refused {
            self.holds += 1;
            self.until = now + policy.hold_after(self.holds);
            self.fresh_refused = false;
            return true;
        }
        if !fresh {
            self.holds = 0;
        }
        self.fresh_refused = fresh;
        false
    }

    /// The API refused `token`: whether it is dropped from `slot` (only if it is the one held —
    /// compare-and-delete), kept (a hold is on, or begins: see [`Self::keeps`]), or was not held.
    pub(crate) fn judge(&mut self, now: u64, policy: &Policy, slot: &mut Slot, token: &str) -> Refusal {
        if self.holding(now) {
            return Refusal::Kept;
        }
        let refusal = match slot.issued_if_held(token) {
            None => Refusal::NotHeld,
            Some(issued) if self.keeps(now, issued, policy) => return Refusal::Kept,
            Some(_) => Refusal::Dropped,
        };
        slot.refuse(token);
        refusal
    }

    /// The user says something changed.
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_fresh_refusal_holds_and_an_old_one_resets() {
        let (p, mut r) = (Policy::default(), RefusalHold::default());
        assert!(!r.keeps(10, 0, &p), "the first fresh refusal drops the token");
        assert!(
            r.keeps(20, 15, &p),
            "the next fresh one: minting again will not help"
        );
        assert!(r.holding(20 + p.hold_after(1) - 1));
        assert!(!r.holding(20 + p.hold_after(1)));
        let late = 20 + p.hold_after(1) + p.fresh_refusal_ms;
        assert!(!r.keeps(late, 0, &p), "an old token's refusal is dropped");
    }
}
