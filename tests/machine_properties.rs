//! Random event sequences against the lifecycle machine (proptest), with a simulated clock, a
//! simulated store and a token source whose answers the sequence picks. Whatever happens:
//! - no record is ever served past its hard margin;
//! - never two mints in flight at once (a second starts only once the first's flight is dead);
//! - a token the API refused is never served again (unless a refusal hold keeps it on purpose);
//! - every call ends, or waits with a deadline in the future.
#![cfg(not(target_arch = "wasm32"))] // proptest is a native dev-dependency
use autopay_auth::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    /// Time passes.
    Advance(u64),
    /// A new caller wants a usable token.
    Want,
    /// A caller holding served token `n` (mod the served count) asks to replace it.
    Replace(usize),
    /// The I/O of pending call `n` (mod the pending count) comes back with outcome `k`.
    Complete(usize, u8),
    /// The API refuses served token `n`.
    Refuse(usize),
    /// The user forgets the token.
    Invalidate,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u64..20_000).prop_map(Op::Advance),
        Just(Op::Want),
        any::<usize>().prop_map(Op::Replace),
        (any::<usize>(), any::<u8>()).prop_map(|(n, k)| Op::Complete(n, k)),
        (any::<usize>(), any::<u8>()).prop_map(|(n, k)| Op::Complete(n, k)),
        any::<usize>().prop_map(Op::Refuse),
        Just(Op::Invalidate),
    ]
}

struct World {
    m: Machine,
    jitter: f64,
    now: u64,
    store: Option<TokenRecord>,
    /// Calls waiting for their I/O (or their wait) to come back, with the action.
    pending: Vec<(Call, Action, u64)>,
    /// When each mint still out was sent.
    mints_out: Vec<u64>,
    served: Vec<String>,
    refused: Option<String>,
    minted: u32,
}

const BOUND: u64 = DEFAULT_REQUEST_TIMEOUT_MS + MINT_LOCK_GRACE_MS;

impl World {
    /// Carries out what the machine answered.
    fn take(&mut self, call: Call, action: Action) {
        match action {
            Action::Serve(s) => self.check_served(&s),
            Action::ServeAndRefresh(s, mut refresh) => {
                self.check_served(&s);
                let next = self.m.want(self.now, &mut refresh);
                self.take(refresh, next);
            }
            Action::Fail(_) => {}
            Action::WaitUntil(t) => {
                assert!(t >= self.now, "a wait ends now or later");
                self.pending.push((call, Action::WaitUntil(t), self.now));
            }
            Action::Mint { replacing } => {
                let live: Vec<_> = self
                    .mints_out
                    .iter()
                    .filter(|sent| self.now < *sent + BOUND)
                    .collect();
                assert!(
                    live.is_empty(),
                    "a second mint at {} while {live:?} in flight",
                    self.now
                );
                self.mints_out.push(self.now);
                self.pending.push((call, Action::Mint { replacing }, self.now));
            }
            io => self.pending.push((call, io, self.now)),
        }
    }

    fn check_served(&mut self, s: &Served) {
        let t = Policy::default().timeline(&s.record, self.jitter);
        assert!(
            self.now < t.usable_until_ms,
            "served {} past its hard margin at {}",
            s.record.access_token,
            self.now
        );
        assert_ne!(
            self.refused.as_deref(),
            Some(s.record.access_token.as_str()),
            "served a refused token"
        );
        self.served.push(s.record.access_token.clone());
    }

    fn complete(&mut self, n: usize, k: u8) {
        if self.pending.is_empty() {
            return;
        }
        let (mut call, action, sent) = self.pending.remove(n % self.pending.len());
        let now = self.now;
        let next = match action {
            Action::ReadStore { .. } => {
                let read = match k % 4 {
                    0 => Err(StoreError("down".into())),
                    1 => Ok(None), // a value that did not open
                    _ => Ok(self.store.clone()),
                };
                self.m.stored(now, &mut call, read)
            }
            Action::ClaimLock { .. } => {
                let claim = match k % 4 {
                    0 => Err(StoreError("down".into())),
                    1 => Ok(false),
                    _ => Ok(true),
                };
                self.m.claimed(now, &mut call, claim)
            }
            Action::Mint { .. } => {
                let out = self
                    .mints_out
                    .iter()
                    .position(|t| *t == sent)
                    .expect("this mint is out");
                self.mints_out.remove(out);
                let result = match k % 5 {
                    0 => Err(Error::Server(ServerError {
                        status: 503,
                        error: None,
                        description: None,
                        retry_after: None,
                    })),
                    1 => Err(Error::Timeout {
                        host: "h".into(),
                        after_ms: 10_000,
                    }),
                    life => {
                        self.minted += 1;
                        let life_s = [5, 60, 3_600][usize::from(life) - 2];
                        Ok(TokenRecord {
                            access_token: format!("t{}", self.minted),
                            token_type: "Bearer".into(),
                            scope: None,
                            issued_at_ms: sent,
                            expires_at_ms: sent + life_s * 1000,
                        })
                    }
                };
                self.m.minted(now, &mut call, result)
            }
            Action::Save { record, .. } => {
                if k % 3 == 0 {
                    self.m.saved(now, &mut call, &[Err(StoreError("down".into()))])
                } else {
                    self.store = record.map(|(r, _)| (*r).clone()).or(self.store.take());
                    self.m.saved(now, &mut call, &[Ok(())])
                }
            }
            Action::Unlock => self.m.saved(now, &mut call, &[Ok(())]),
            Action::WaitUntil(_) => self.m.want(now, &mut call),
            other => unreachable!("{other:?} is never pending"),
        };
        self.take(call, next);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_under_any_sequence(
        ops in proptest::collection::vec(op(), 1..120),
        shared in prop_oneof![Just(Shared::Memory), Just(Shared::ReadWrite), Just(Shared::Locking)],
        jitter in -1.0f64..=1.0,
    ) {
        let mut w = World {
            m: Machine::new(Policy::default(), jitter, shared).unwrap(),
            jitter,
            now: 1_000_000,
            store: None,
            pending: vec![],
            mints_out: vec![],
            served: vec![],
            refused: None,
            minted: 0,
        };
        for op in ops {
            match op {
                Op::Advance(ms) => {
                    w.now += ms;
                    w.m.timeout(w.now);
                }
                Op::Want => {
                    let mut c = Call::new(Want::Usable);
                    let a = w.m.want(w.now, &mut c);
                    w.take(c, a);
                }
                Op::Replace(n) if !w.served.is_empty() => {
                    let held = w.served[n % w.served.len()].clone();
                    let mut c = Call::new(Want::Replacing(held));
                    let a = w.m.want(w.now, &mut c);
                    w.take(c, a);
                }
                Op::Complete(n, k) => w.complete(n, k),
                Op::Refuse(n) if !w.served.is_empty() => {
                    let token = w.served[n % w.served.len()].clone();
                    if w.m.refused(w.now, &token) != Refusal::Kept {
                        w.refused = Some(token);
                    }
                }
                Op::Invalidate => {
                    if let Some((_, rec)) = w.m.current(w.now) {
                        w.refused = Some(rec.access_token.clone());
                    }
                    w.m.invalidate(w.now);
                }
                _ => {}
            }
        }
    }
}
