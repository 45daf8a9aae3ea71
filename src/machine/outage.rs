//! The store-outage policy: what an instance does once the store has not answered for
//! `store_wait_ms`, so the fleet cannot agree on who mints ([`StoreOutage`]).

use crate::lifecycle::{Policy, StoreOutage};

use super::flight::Purpose;

/// What to do without the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Without {
    /// Mint alone (at most once per rotation spacing).
    MintAlone,
    /// Fail the callers with `store_unavailable`, for this reason.
    Fail(&'static str),
}

/// The outage policy's memory: when this instance last minted alone.
#[derive(Clone, Debug, Default)]
pub(super) struct Outage {
    minted_at: Option<u64>,
}

impl Outage {
    /// The store did not answer for `store_wait_ms` for a flight of `purpose`; `lifetime` is the
    /// tokens' lifetime, if one was granted. A renewal never mints alone: the held token is
    /// served, and the renewal is tried again later.
    pub(super) fn decide(
        &mut self,
        now: u64,
        policy: &Policy,
        purpose: Purpose,
        lifetime: Option<u64>,
    ) -> Without {
        if purpose == Purpose::Renew {
            return Without::Fail(
                "the store cannot be reached: the held token is served, and the renewal is tried again later",
            );
        }
        match policy.store_outage {
            StoreOutage::Mint => {
                let spacing = lifetime.map_or(0, |l| policy.rotation_spacing_ms(l));
                if self.minted_at.is_some_and(|t| now < t + spacing) {
                    return Without::Fail(
                        "the store cannot be reached, and this instance already minted without it this token lifetime",
                    );
                }
                self.minted_at = Some(now);
                Without::MintAlone
            }
            StoreOutage::Fail => Without::Fail("the store did not answer within storeWaitMs"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mints_alone_once_per_rotation_and_never_for_a_renewal() {
        let policy = Policy::default();
        let life = 3_600_000;
        let mut o = Outage::default();
        assert!(matches!(
            o.decide(0, &policy, Purpose::Renew, Some(life)),
            Without::Fail(_)
        ));
        assert_eq!(
            o.decide(0, &policy, Purpose::Obtain, Some(life)),
            Without::MintAlone
        );
        assert!(matches!(
            o.decide(1, &policy, Purpose::Obtain, Some(life)),
            Without::Fail(_)
        ));
        let later = policy.rotation_spacing_ms(life);
        assert_eq!(
            o.decide(later, &policy, Purpose::Obtain, Some(life)),
            Without::MintAlone
        );
        let fail = Policy {
            store_outage: StoreOutage::Fail,
            ..Policy::default()
        };
        assert!(matches!(
            Outage::default().decide(0, &fail, Purpose::Obtain, None),
            Without::Fail(_)
        ));
    }
}
