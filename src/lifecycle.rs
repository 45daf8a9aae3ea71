//! When a token is fresh, stale or expired: pure functions of (record, now) and named defaults.
//!
//! ```text
//! issued ──── fresh ────┬──── stale ────┬── margin ──┤ expires_at
//!                  refresh_at       usable_until
//! ```
//! *Fresh*: served as is. *Stale*: still served, while one background refresh runs. *Expired*
//! (past `usable_until`): never served; a caller waits for a new token. Both points scale with
//! the token's lifetime, so a 5-second token is used for most of its 5 seconds.

use crate::error::{Error, field};
use crate::quota::{Limit, check_limits};
use crate::record::TokenRecord;

/// Share of the lifetime after which a token is stale (aliri_tokens: 75 %).
pub const DEFAULT_REFRESH_RATIO: f64 = 0.75;
/// Hard margin before expiry in which a token is never served (MSAL: 300 s)…
pub const DEFAULT_EXPIRY_MARGIN_MS: u64 = 300_000;
/// …but never more than this share of the lifetime, so short tokens stay usable.
pub const DEFAULT_EXPIRY_MARGIN_RATIO: f64 = 0.1;
/// Largest shift of the refresh point, either way (MSAL: ±300 s)…
pub const DEFAULT_REFRESH_JITTER_MS: u64 = 300_000;
/// …and never more than this share of the lifetime.
pub const REFRESH_JITTER_RATIO: f64 = 0.05;
/// How long one token request may take.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 10_000;
/// After a failed background refresh, the first wait before the next attempt; it doubles up to
/// [`MAX_REFRESH_BACKOFF_MS`] (or follows `Retry-After`).
pub const MIN_REFRESH_BACKOFF_MS: u64 = 1_000;
/// The longest wait between background refresh attempts.
pub const MAX_REFRESH_BACKOFF_MS: u64 = 60_000;

/// Attempts per mint when the token endpoint answers 5xx (without `Retry-After`), cannot be
/// reached, or times out: the first and two retries.
pub const DEFAULT_MINT_ATTEMPTS: u32 = 3;
/// Retry waits are drawn uniformly from [0, min(cap, base × 2^retry)] ("full jitter")…
pub const DEFAULT_RETRY_BASE_MS: u64 = 250;
/// …up to this cap.
pub const DEFAULT_RETRY_CAP_MS: u64 = 4_000;
/// Every attempt of one mint, with the waits between them, ends within this.
pub const DEFAULT_MINT_DEADLINE_MS: u64 = 30_000;
/// Cooldown after a 429 that did not say for how long.
pub const DEFAULT_COOLDOWN_MS: u64 = 30_000;
/// The longest cooldown a `Retry-After` can impose (a longer one is capped).
pub const MAX_COOLDOWN_MS: u64 = 600_000;
/// A refusal (401, 403, another 4xx, an invalid answer) is remembered this long at first…
pub const DEFAULT_HOLD_MS: u64 = 30_000;
/// …doubling on each repeat up to this.
pub const MAX_HOLD_MS: u64 = 600_000;
/// The API refusing a token younger than this is a *fresh* refusal: minting again may not help.
pub const DEFAULT_FRESH_REFUSAL_MS: u64 = 60_000;
/// The mint budget counts token requests in a sliding window this long…
pub const DEFAULT_BUDGET_WINDOW_MS: u64 = 3_600_000;
/// …allowing this many beyond what normal rotation needs (see [`Policy::mint_budget`]).
pub const DEFAULT_BUDGET_BURST: u32 = 10;
/// How long one store call (get, put, delete, lock) may take before it counts as failed.
pub const DEFAULT_STORE_TIMEOUT_MS: u64 = 3_000;
/// With [`StoreOutage::Fail`], how long a caller without a token keeps trying an unreachable
/// store before it fails with `store_unavailable`.
pub const DEFAULT_STORE_WAIT_MS: u64 = 5_000;
/// The minting lock outlives the longest mint it guards by this much (clock and I/O slack).
pub const LOCK_GRACE_MS: u64 = 2_000;

/// What an instance without a usable token does when the shared store cannot be reached (a read
/// or the minting lock fails), so the fleet cannot agree on who mints.
///
/// Either way, a blip is not an outage: the store is tried again for
/// [`Policy::store_wait_ms`] first (a failed call, a timeout), and a renewal never mints alone
/// (the held token is served, and the renewal backs off). Then the default is
/// [`StoreOutage::Mint`]: availability, bounded. An instance mints on its own at most once per
/// rotation spacing (about one per token lifetime, and never past the mint budget), so an outage
/// costs at most one token per instance per lifetime — the same as a fleet with no shared store
/// — and never a token per request; those requests are the instance's own and never count
/// against the fleet's budget when the store returns. Vendors whose quota cannot afford even
/// that choose [`StoreOutage::Fail`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StoreOutage {
    /// After [`Policy::store_wait_ms`], mint alone, at most once per rotation spacing (see
    /// above).
    #[default]
    Mint,
    /// After [`Policy::store_wait_ms`], fail with `store_unavailable`; never mint without the
    /// store's agreement.
    Fail,
}

/// The lifecycle knobs. Build with [`Policy::default`] and adjust; [`Policy::validate`] checks.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Share of the lifetime after which the token is stale, in (0, 1].
    pub refresh_ratio: f64,
    /// Hard margin before expiry in which the token is never served.
    pub expiry_margin_ms: u64,
    /// Cap on the margin as a share of the lifetime, in [0, 0.5].
    pub expiry_margin_ratio: f64,
    /// Largest jitter of the refresh point (further capped at 5 % of the lifetime).
    pub refresh_jitter_ms: u64,
    /// Timeout of one token request.
    pub request_timeout_ms: u64,
    /// Attempts per mint for 5xx without `Retry-After`, network errors and timeouts (≥ 1).
    pub mint_attempts: u32,
    /// Base of the full-jitter backoff between attempts.
    pub retry_base_ms: u64,
    /// Cap of the backoff between attempts.
    pub retry_cap_ms: u64,
    /// All attempts of one mint end within this.
    pub mint_deadline_ms: u64,
    /// Cooldown after a 429 without `Retry-After`.
    pub cooldown_ms: u64,
    /// Cap on any cooldown.
    pub max_cooldown_ms: u64,
    /// First hold after a refusal; doubles on repeats.
    pub hold_ms: u64,
    /// Cap on a hold.
    pub max_hold_ms: u64,
    /// A token refused younger than this was refused *fresh*.
    pub fresh_refusal_ms: u64,
    /// The mint budget's sliding window.
    pub budget_window_ms: u64,
    /// Token requests allowed in a window beyond what normal rotation needs.
    pub budget_burst: u32,
    /// The user's own limits for the whole fleet (so many an hour, a day, a calendar month),
    /// beside the budget above and the quotas the token endpoint declares.
    pub limits: Vec<Limit>,
    /// Bound of one store call.
    pub store_timeout_ms: u64,
    /// What an instance without a token does while the shared store cannot be reached.
    pub store_outage: StoreOutage,
    /// How long a caller without a token keeps trying an unreachable store before the
    /// [`StoreOutage`] policy applies.
    pub store_wait_ms: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            refresh_ratio: DEFAULT_REFRESH_RATIO,
            expiry_margin_ms: DEFAULT_EXPIRY_MARGIN_MS,
            expiry_margin_ratio: DEFAULT_EXPIRY_MARGIN_RATIO,
            refresh_jitter_ms: DEFAULT_REFRESH_JITTER_MS,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            mint_attempts: DEFAULT_MINT_ATTEMPTS,
            retry_base_ms: DEFAULT_RETRY_BASE_MS,
            retry_cap_ms: DEFAULT_RETRY_CAP_MS,
            mint_deadline_ms: DEFAULT_MINT_DEADLINE_MS,
            cooldown_ms: DEFAULT_COOLDOWN_MS,
            max_cooldown_ms: MAX_COOLDOWN_MS,
            hold_ms: DEFAULT_HOLD_MS,
            max_hold_ms: MAX_HOLD_MS,
            fresh_refusal_ms: DEFAULT_FRESH_REFUSAL_MS,
            budget_window_ms: DEFAULT_BUDGET_WINDOW_MS,
            budget_burst: DEFAULT_BUDGET_BURST,
            limits: Vec::new(),
            store_timeout_ms: DEFAULT_STORE_TIMEOUT_MS,
            store_outage: StoreOutage::Mint,
            store_wait_ms: DEFAULT_STORE_WAIT_MS,
        }
    }
}

/// Where a token is in its life at some instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Serve it.
    Fresh,
    /// Serve it, and refresh in the background.
    Stale,
    /// Do not serve it.
    Expired,
}

impl Phase {
    /// Fresh or stale.
    pub fn usable(self) -> bool {
        self != Phase::Expired
    }
}

/// The two instants that matter for one record under one policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeline {
    /// From here on the token is stale.
    pub refresh_at_ms: u64,
    /// From here on the token is never served.
    pub usable_until_ms: u64,
}

impl Policy {
    /// Checks the knobs; the error names the [`field`].
    pub fn validate(&self) -> Result<(), Error> {
        if !(self.refresh_ratio > 0.0 && self.refresh_ratio <= 1.0) {
            return Err(Error::config(field::REFRESH_RATIO, "must be a number in (0, 1]"));
        }
        if !(0.0..=0.5).contains(&self.expiry_margin_ratio) {
            return Err(Error::config(
                field::EXPIRY_MARGIN_RATIO,
                "must be a number in [0, 0.5]",
            ));
        }
        if self.request_timeout_ms == 0 || self.request_timeout_ms > 600_000 {
            return Err(Error::config(
                field::REQUEST_TIMEOUT,
                "must be between 1 and 600000",
            ));
        }
        if self.mint_attempts == 0 || self.mint_attempts > 10 {
            return Err(Error::config(field::MINT_ATTEMPTS, "must be between 1 and 10"));
        }
        if self.budget_burst == 0 || self.budget_window_ms == 0 {
            return Err(Error::config(
                field::MINT_BUDGET,
                "must allow at least one mint per window",
            ));
        }
        check_limits(&self.limits)?;
        if self.store_timeout_ms == 0 {
            return Err(Error::config(field::STORE_TIMEOUT, "must be at least 1 ms"));
        }
        Ok(())
    }

    /// How many token requests the mint budget allows in one window, after a token that lived
    /// `lifetime_ms` (`None` before the first): [`Policy::budget_burst`] plus twice what normal
    /// rotation needs. Rotation never mints two tokens closer than the shortest span this
    /// policy serves a token before refreshing it — (refresh ratio − 5 % jitter) of its life,
    /// and never less than it is usable — so normal rotation of any lifetime, over any run,
    /// stays under half the budget; only a fault or a bug can exhaust it.
    pub fn mint_budget(&self, lifetime_ms: Option<u64>) -> u64 {
        let burst = u64::from(self.budget_burst);
        let Some(lifetime) = lifetime_ms.filter(|l| *l > 0) else {
            return burst;
        };
        let spacing = self.rotation_spacing_ms(lifetime).max(1) as f64;
        burst + (2.0 * self.budget_window_ms as f64 / spacing).ceil() as u64
    }

    /// The shortest span normal rotation leaves between two tokens of `lifetime_ms`: (refresh
    /// ratio − 5 % jitter) of the lifetime, and never more than it is usable.
    pub fn rotation_spacing_ms(&self, lifetime_ms: u64) -> u64 {
        let share = (self.refresh_ratio - REFRESH_JITTER_RATIO)
            .min(1.0 - self.expiry_margin_ratio)
            .max(0.05);
        (lifetime_ms as f64 * share) as u64
    }

    /// How long a driver lets one token request run, even if the transport ignores its own
    /// timeout: the timeout plus half the grace, so the answer lands inside the flight's step
    /// deadline (the timeout plus the whole grace) and still counts as that flight's.
    pub fn mint_bound_ms(&self) -> u64 {
        self.request_timeout_ms + LOCK_GRACE_MS / 2
    }

    /// The longest one mint can take, retries and the waits between them included: every
    /// attempt ends within [`Policy::mint_bound_ms`], and the mint's deadline caps the whole.
    pub fn longest_mint_ms(&self) -> u64 {
        let attempts = u64::from(self.mint_attempts);
        let per_attempt = self.mint_bound_ms();
        let waits: u64 = (1..self.mint_attempts).map(|r| self.retry_wait(r, 1.0)).sum();
        (attempts * per_attempt + waits)
            .min(self.mint_deadline_ms.max(self.request_timeout_ms) + LOCK_GRACE_MS / 2)
    }

    /// How long the minting lock lives: the re-read under the lock, the longest mint, the
    /// writes after it, and the grace. So a live holder never loses it, and a dead holder's lock
    /// frees itself within this.
    pub fn lock_ttl_ms(&self) -> u64 {
        2 * self.store_timeout_ms + self.longest_mint_ms() + LOCK_GRACE_MS
    }

    /// The hold after the `n`th refusal in a row (n ≥ 1): [`Policy::hold_ms`] doubling up to
    /// [`Policy::max_hold_ms`].
    pub fn hold_after(&self, n: u32) -> u64 {
        let exp = n.saturating_sub(1).min(20);
        self.hold_ms.saturating_mul(1 << exp).min(self.max_hold_ms)
    }

    /// The cooldown a rate limit imposes: `Retry-After` (capped), or the default.
    pub fn cooldown(&self, retry_after_secs: Option<u64>) -> u64 {
        retry_after_secs
            .map_or(self.cooldown_ms, |s| s.saturating_mul(1000))
            .min(self.max_cooldown_ms)
    }

    /// The full-jitter wait before retry number `retry` (1 = the first), given `unit` in
    /// [0, 1): uniform in [0, min(cap, base × 2^(retry-1))].
    pub fn retry_wait(&self, retry: u32, unit: f64) -> u64 {
        let exp = retry.saturating_sub(1).min(20);
        let ceiling = self.retry_base_ms.saturating_mul(1 << exp).min(self.retry_cap_ms);
        (ceiling as f64 * unit.clamp(0.0, 1.0)) as u64
    }

    /// The timeline of `record`. `jitter` in [-1, 1] shifts the refresh point (each client picks
    /// its own once, so many instances do not refresh in the same second).
    pub fn timeline(&self, record: &TokenRecord, jitter: f64) -> Timeline {
        let lifetime = record.lifetime_ms() as f64;
        let margin = (self.expiry_margin_ms as f64).min(lifetime * self.expiry_margin_ratio);
        let usable_until_ms = record.expires_at_ms.saturating_sub(margin as u64);
        let spread = (self.refresh_jitter_ms as f64).min(lifetime * REFRESH_JITTER_RATIO);
        let offset = lifetime * self.refresh_ratio + spread * jitter.clamp(-1.0, 1.0);
        let refresh_at_ms = (record.issued_at_ms + offset.max(0.0) as u64).min(usable_until_ms);
        Timeline {
            refresh_at_ms,
            usable_until_ms,
        }
    }

    /// The phase of `record` at `now_ms`.
    pub fn phase(&self, record: &TokenRecord, jitter: f64, now_ms: u64) -> Phase {
        self.timeline(record, jitter).phase_at(now_ms)
    }
}

impl Timeline {
    /// The phase at `now_ms`.
    pub fn phase_at(&self, now_ms: u64) -> Phase {
        if now_ms >= self.usable_until_ms {
            Phase::Expired
        } else if now_ms >= self.refresh_at_ms {
            Phase::Stale
        } else {
            Phase::Fresh
        }
    }
}

/// Wait before the next background refresh after `failures` failures in a row: `Retry-After`
/// when the server gave one, else doubling from [`MIN_REFRESH_BACKOFF_MS`] up to
/// [`MAX_REFRESH_BACKOFF_MS`].
pub fn refresh_backoff_ms(failures: u32, retry_after_secs: Option<u64>) -> u64 {
    if let Some(secs) = retry_after_secs {
        return secs.saturating_mul(1000).max(MIN_REFRESH_BACKOFF_MS);
    }
    let exp = failures.saturating_sub(1).min(16);
    (MIN_REFRESH_BACKOFF_MS << exp).min(MAX_REFRESH_BACKOFF_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(issued: u64, lifetime_s: u64) -> TokenRecord {
        TokenRecord {
            access_token: "t".into(),
            token_type: "Bearer".into(),
            scope: None,
            issued_at_ms: issued,
            expires_at_ms: issued + lifetime_s * 1000,
        }
    }

    #[test]
    fn day_long_token_uses_anchor_numbers() {
        let p = Policy::default();
        let r = rec(0, 86_400);
        let t = p.timeline(&r, 0.0);
        assert_eq!(t.refresh_at_ms, 64_800_000); // 18 h
        assert_eq!(t.usable_until_ms, 86_400_000 - 300_000); // 5 min margin
        assert_eq!(p.timeline(&r, 1.0).refresh_at_ms, 64_800_000 + 300_000);
        assert_eq!(p.timeline(&r, -1.0).refresh_at_ms, 64_800_000 - 300_000);
        assert_eq!(p.timeline(&r, 7.0).refresh_at_ms, 64_800_000 + 300_000);
    }

    #[test]
    fn phases_at_the_edges() {
        let p = Policy::default();
        let r = rec(1_000, 86_400);
        let t = p.timeline(&r, 0.0);
        let table = [
            (1_000, Phase::Fresh),
            (t.refresh_at_ms - 1, Phase::Fresh),
            (t.refresh_at_ms, Phase::Stale),
            (t.usable_until_ms - 1, Phase::Stale),
            (t.usable_until_ms, Phase::Expired),
            (r.expires_at_ms, Phase::Expired),
            (u64::MAX, Phase::Expired),
        ];
        for (now, phase) in table {
            assert_eq!(p.phase(&r, 0.0, now), phase, "at {now}");
        }
    }

    #[test]
    fn short_tokens_scale_their_margins() {
        let p = Policy::default();
        // 5 s: stale at 3.75 s (±0.25 s), never served from 4.5 s: most of its life is used.
        let t = p.timeline(&rec(0, 5), 0.0);
        assert_eq!(t.refresh_at_ms, 3_750);
        assert_eq!(t.usable_until_ms, 4_500);
        assert_eq!(p.timeline(&rec(0, 5), 1.0).refresh_at_ms, 4_000);
        // 1 s: still usable for 900 ms.
        let t = p.timeline(&rec(0, 1), 0.0);
        assert_eq!((t.refresh_at_ms, t.usable_until_ms), (750, 900));
        // 1 h: margin 300 s (< 10 % of 3600 s = 360 s).
        assert_eq!(p.timeline(&rec(0, 3600), 0.0).usable_until_ms, 3_300_000);
    }

    #[test]
    fn refresh_never_after_usable_until() {
        let p = Policy {
            refresh_ratio: 1.0,
            ..Policy::default()
        };
        let t = p.timeline(&rec(0, 100), 1.0);
        assert_eq!(t.refresh_at_ms, t.usable_until_ms);
    }

    #[test]
    fn validation_names_the_option() {
        let bad = [
            (
                Policy {
                    refresh_ratio: 0.0,
                    ..Policy::default()
                },
                field::REFRESH_RATIO,
            ),
            (
                Policy {
                    refresh_ratio: f64::NAN,
                    ..Policy::default()
                },
                field::REFRESH_RATIO,
            ),
            (
                Policy {
                    refresh_ratio: 1.5,
                    ..Policy::default()
                },
                field::REFRESH_RATIO,
            ),
            (
                Policy {
                    expiry_margin_ratio: 0.9,
                    ..Policy::default()
                },
                field::EXPIRY_MARGIN_RATIO,
            ),
            (
                Policy {
                    request_timeout_ms: 0,
                    ..Policy::default()
                },
                field::REQUEST_TIMEOUT,
            ),
        ];
        for (p, opt) in bad {
            assert_eq!(p.validate().unwrap_err().field(), Some(opt));
        }
        assert!(Policy::default().validate().is_ok());
    }

    #[test]
    fn backoff_doubles_and_honours_retry_after() {
        assert_eq!(refresh_backoff_ms(1, None), 1_000);
        assert_eq!(refresh_backoff_ms(2, None), 2_000);
        assert_eq!(refresh_backoff_ms(7, None), 60_000);
        assert_eq!(refresh_backoff_ms(40, None), 60_000);
        assert_eq!(refresh_backoff_ms(1, Some(30)), 30_000);
        assert_eq!(refresh_backoff_ms(1, Some(0)), 1_000);
    }
}
