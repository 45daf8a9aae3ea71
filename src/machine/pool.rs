//! What the fleet pools in the store beside the record ([`FleetState`]): each instance's budget
//! window, a gate still closed (a cooldown, a hold, a backoff) and the vendor's declared quotas —
//! read and adopted before a token request, written after one.

use crate::error::Error;
use crate::fleet::FleetState;
use crate::lifecycle::Policy;

use super::budget::Budget;
use super::gate::Gate;
use super::outbox::Note;
use super::{Machine, Shared};

/// Adopts the fleet state read from the store: its budget window is merged into this
/// instance's, and a gate still closed is kept here too — the cooldown it closes (its length and
/// error), if any. `pooled`: the store locks, so the fleet agrees who mints. Instances on a store
/// that cannot lock each mint on their own, so pooling their budgets would only refuse callers:
/// each keeps its own (a runaway one is still capped), and the vendor's word holds for all.
pub(super) fn adopt<'f>(
    now: u64,
    policy: &Policy,
    pooled: bool,
    budget: &mut Budget,
    gate: &mut Gate,
    fleet: &'f FleetState,
) -> Option<(u64, &'f Error)> {
    if pooled {
        budget.adopt(now, policy, &fleet.sent, fleet.lifetime_ms, &fleet.declared);
    } else {
        budget.learn(now, &fleet.declared);
    }
    let closed = fleet
        .gate
        .as_ref()
        .filter(|g| pooled || !matches!(g.error, Error::MintBudgetExhausted { .. }))?;
    gate.adopt(now, closed)
}

/// The fleet state to write beside the record — this instance's budget window, its closed gate
/// and the declared quotas — with the TTL that keeps it while any of them matters (at least
/// `min_ttl_secs`); `None` when nothing matters any more.
pub(super) fn state(
    now: u64,
    policy: &Policy,
    min_ttl_secs: u64,
    budget: &Budget,
    gate: &Gate,
) -> Option<(FleetState, u64)> {
    let sent = budget.live(now, policy);
    let closed = gate.closed(now);
    let keep_until = budget
        .keep_until(now, policy)
        .into_iter()
        .chain(closed.as_ref().map(|g| g.until_ms))
        .max()?;
    let ttl = keep_until.saturating_sub(now).div_ceil(1000).max(min_ttl_secs);
    let state = FleetState {
        sent,
        lifetime_ms: budget.lifetime(),
        gate: closed,
        declared: budget.declared(now),
    };
    Some((state, ttl))
}

impl Machine {
    /// The fleet state read from the store, adopted (see [`adopt`]); a gate it closes is a
    /// cooldown to tell of.
    pub(super) fn adopt_fleet(&mut self, now: u64, fleet: &FleetState) {
        let pooled = self.shared == Shared::Locking;
        if let Some((ms, error)) = adopt(now, &self.policy, pooled, &mut self.budget, &mut self.gate, fleet) {
            self.outbox.note(now, Note::Cooldown { error, ms });
        }
    }

    /// The fleet state to write beside the record (see [`state`]).
    pub(super) fn fleet_state(&self, now: u64) -> Option<(FleetState, u64)> {
        if !self.shared.writes() {
            return None;
        }
        state(now, &self.policy, self.min_ttl_secs, &self.budget, &self.gate)
    }
}
