//! Two layers of the same manager, as in the Worker: per-isolate caches (memory → read-only
//! store → ask the authority) in front of one minting authority (memory → store → endpoint).
//! Cold bursts on every isolate mint once; stale isolates get one refresh between them.
mod support;
use std::cell::Cell;
use std::rc::Rc;

use autopay_auth::*;
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use support::*;

/// The isolates' source: the authority, asked with the token being replaced.
#[derive(Clone)]
struct Authority {
    manager: Manager,
    calls: Rc<Cell<u32>>,
}

impl TokenSource for Authority {
    async fn mint(&self, replacing: Option<&str>, _timeout_ms: u64) -> Result<TokenRecord, Error> {
        self.calls.set(self.calls.get() + 1);
        let lookup = match replacing {
            Some(held) => self.manager.get_replacing(held).await?,
            None => self.manager.get().await?,
        };
        if let Some(refresh) = lookup.refresh {
            refresh.run().await; // in the Worker: waitUntil inside the Durable Object
        }
        Ok((*lookup.served.record).clone())
    }
}

type Isolate = TokenManager<Parts<Authority, ReadOnlyStore<FakeStore>, FakeClock>>;

fn isolate(w: &World, authority: &Authority, jitter: f64) -> Isolate {
    let host = Parts::new(
        authority.clone(),
        Some(ReadOnlyStore(w.store.clone())),
        w.clock.clone(),
    );
    TokenManager::new(&config(), Policy::default(), jitter, host).unwrap()
}

fn setup(w: &World) -> Authority {
    Authority {
        manager: w.manager(true),
        calls: Rc::default(),
    }
}

fn run(isolates: &[Isolate], calls_each: usize, w: &World) -> Vec<String> {
    let mut pool = LocalPool::new();
    let out = Rc::new(std::cell::RefCell::new(Vec::new()));
    w.transport.gate.close();
    for m in isolates {
        for _ in 0..calls_each {
            let (m, out, spawner) = (m.clone(), Rc::clone(&out), pool.spawner());
            pool.spawner()
                .spawn_local(async move {
                    let l = m.get().await.unwrap();
                    if let Some(r) = l.refresh {
                        spawner.spawn_local(r.run()).unwrap();
                    }
                    out.borrow_mut().push(l.served.record.access_token.clone());
                })
                .unwrap();
        }
    }
    pool.run_until_stalled();
    w.transport.gate.open();
    pool.run();
    Rc::try_unwrap(out).unwrap().into_inner()
}

#[test]
fn cold_burst_on_many_isolates_mints_once() {
    let w = World::new();
    let auth = setup(&w);
    let isolates: Vec<_> = (0..5).map(|i| isolate(&w, &auth, i as f64 / 5.0)).collect();
    let tokens = run(&isolates, 40, &w);
    assert_eq!(tokens.len(), 200);
    assert!(tokens.iter().all(|t| t == "tok-1"));
    assert_eq!(w.transport.calls(), 1);
    assert_eq!(auth.calls.get(), 5, "one authority call per isolate");
    // the token was written to the store once, by the authority (beside it, its fleet state)
    let key = isolates[0].cache_key().to_owned();
    assert_eq!(w.store.put_keys(), [key.clone(), format!("{key}{FLEET_SUFFIX}")]);
    // a new isolate starts from the store without asking the authority
    let late = isolate(&w, &auth, 0.0);
    assert_eq!(get(&late).unwrap().source, Source::Store);
    assert_eq!(auth.calls.get(), 5);
}

#[test]
fn stale_isolates_share_one_refresh_even_when_the_authority_thinks_it_fresh() {
    let w = World::new();
    let auth = setup(&w);
    // isolates refresh earlier (jitter -1) than the authority would (jitter 0)
    let isolates: Vec<_> = (0..4).map(|_| isolate(&w, &auth, -1.0)).collect();
    run(&isolates, 1, &w);
    w.clock.set(START_MS + 64_800_000 - 200_000); // stale for the isolates, fresh for the authority
    let served = run(&isolates, 10, &w);
    assert!(
        served.iter().all(|t| t == "tok-1"),
        "the stale token is served meanwhile"
    );
    assert_eq!(w.transport.calls(), 2, "one refresh mint between all isolates");
    for m in &isolates {
        assert_eq!(get(m).unwrap().record.access_token, "tok-2");
    }
}

#[test]
fn a_failing_authority_refresh_keeps_everyone_served_and_backs_off() {
    let w = World::new();
    let auth = setup(&w);
    let m = isolate(&w, &auth, 0.0);
    get(&m).unwrap();
    w.clock.set(START_MS + 70_000_000);
    w.transport
        .then(status(503, r#"{"error":"temporarily_unavailable"}"#));
    assert_eq!(get(&m).unwrap().record.access_token, "tok-1");
    let calls = auth.calls.get();
    for _ in 0..50 {
        assert_eq!(get(&m).unwrap().record.access_token, "tok-1");
    }
    assert_eq!(
        auth.calls.get(),
        calls,
        "the isolate backs off instead of asking on every call"
    );
    assert_eq!(w.transport.calls(), 2);
}

#[test]
fn an_expired_token_is_replaced_not_returned() {
    let w = World::new();
    w.transport.expires_in.set(100);
    let auth = setup(&w);
    let m = isolate(&w, &auth, 0.0);
    get(&m).unwrap();
    w.clock.set(START_MS + 95_000); // past usable life for both
    let s = get(&m).unwrap();
    assert_eq!(s.record.access_token, "tok-2");
}

#[test]
fn a_refused_token_is_replaced_even_if_the_authority_has_not_heard_of_it() {
    let w = World::new();
    let auth = setup(&w);
    let a = isolate(&w, &auth, 0.0);
    get(&a).unwrap();
    // the API refused tok-1; the isolate drops it, but the authority still holds it
    let _ = block_on(a.invalidate_token("tok-1"));
    let s = get(&a).unwrap();
    assert_eq!(
        s.record.access_token, "tok-2",
        "the isolate asked the authority to replace tok-1"
    );
    assert_eq!(w.transport.calls(), 2);
}
