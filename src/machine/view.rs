//! What the machine tells without being asked to act: its policy and counters, the events and
//! store operations it queued, the token held and its phase, the next deadline, the gate's and
//! the budget's answers — the queries of hosts and health reports. (The events it routes are in
//! `mod.rs`.)

use std::sync::Arc;

use super::budget::BudgetWindow;
use super::{Machine, Shared, StoreOp};
use crate::error::Error;
use crate::lifecycle::{Phase, Policy};
use crate::record::TokenRecord;
use crate::stats::Stats;

impl Machine {
    /// The lifecycle policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.outbox.stats()
    }

    /// What happened since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<crate::Event> {
        self.outbox.take()
    }

    /// The store operations asked since the last call (see [`StoreOp`]).
    pub fn take_store_ops(&mut self) -> Vec<StoreOp> {
        std::mem::take(&mut self.store_ops)
    }

    /// The phase of `record` for this instance at `now`.
    pub fn phase_of(&self, record: &TokenRecord, now: u64) -> Phase {
        self.slot.phase(&self.policy, record, now)
    }

    /// The token in memory and its phase, if there is one.
    pub fn current(&self, now: u64) -> Option<(Phase, Arc<TokenRecord>)> {
        self.slot.current(&self.policy, now)
    }

    /// What a health report shows without minting or adopting anything: the token held (`Ok`),
    /// else whether the store should be looked at (`Err(true)`: one that is read; the record
    /// found there is judged with [`Machine::phase_of`] and not kept).
    pub fn peek(&self, now: u64) -> Result<(Phase, Arc<TokenRecord>), bool> {
        self.current(now).ok_or(self.shared != Shared::Memory)
    }

    /// A token that may be served without asking the machine again until the returned instant:
    /// the refresh point of a fresh token.
    pub fn lease(&self, now: u64) -> Option<(Arc<TokenRecord>, u64)> {
        self.slot.lease(&self.policy, now)
    }

    /// The next instant at which the machine's answers change by themselves: the flight's
    /// deadline, the end of a backoff, the token's refresh point or end of usable life.
    pub fn next_deadline(&self, now: u64) -> Option<u64> {
        let flight = self.flights.current().map(|f| f.deadline);
        [
            flight,
            self.gate.backoff_ends(now),
            self.slot.deadline(&self.policy, now),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether a flight ended since the last call: the driver then wakes the callers waiting.
    pub fn take_landed(&mut self) -> bool {
        self.flights.take_landed()
    }

    /// Why no token request may be made now, if one may not: a cooldown (with the seconds
    /// left), a hold, or the backoff after a failed flight.
    pub fn admit(&self, now: u64) -> Result<(), Error> {
        self.gate.admit(now)
    }

    /// Whether a refused token is being kept (see [`Machine::refused`]).
    pub fn refusals_held(&self, now: u64) -> bool {
        self.refusals.holding(now)
    }

    /// The mint budget's window now, to keep across restarts.
    pub fn budget_window(&self) -> BudgetWindow {
        self.budget.window()
    }

    /// What each quota the token endpoint declared has left at `now`, less what was sent
    /// since it said: `(name, size, left, reset instant)`.
    pub fn quotas(&self, now: u64) -> Vec<(String, Option<u64>, u64, u64)> {
        self.budget.quota_left(now)
    }

    /// The token held and its timeline: when it was minted, turns stale and stops being served.
    pub fn timeline(&self) -> Option<(Arc<TokenRecord>, crate::Timeline)> {
        self.slot.timeline(&self.policy)
    }

    /// The gate closed at `now`, if any — a cooldown, a hold or a backoff, with the error that
    /// closed it (its report: no secret, no body).
    pub fn gate(&self, now: u64) -> Option<crate::Gate> {
        self.gate.closed(now)
    }

    /// Token requests in the window and the budget, at `now`.
    pub fn budget_use(&self, now: u64) -> (u64, u64) {
        self.budget.usage(now, &self.policy)
    }
}
