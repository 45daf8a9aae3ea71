//! The events a service can count and alert on, as an observer of the driver sees them: one per
//! mint, refresh, store error, token error, cooldown and mint-budget refusal — with counts or
//! codes, never a token or a secret.
mod support;
use std::cell::RefCell;
use std::rc::Rc;

use autopay_auth::*;
use support::*;

type Seen = Rc<RefCell<Vec<Event>>>;

/// A manager whose host's observer records every event it is handed.
fn observed(w: &World, with_store: bool) -> (TokenManager<impl Host>, Seen) {
    let seen = Seen::default();
    let sink = Rc::clone(&seen);
    let config = config();
    let source = Endpoint::new(config.clone(), w.transport.clone(), w.clock.clone());
    let host = Parts::new(source, with_store.then(|| w.store.clone()), w.clock.clone())
        .with_observer(move |e: &Event| sink.borrow_mut().push(e.clone()));
    (
        TokenManager::new(&config, Policy::default(), 0.0, host).unwrap(),
        seen,
    )
}

fn kinds(seen: &RefCell<Vec<Event>>) -> Vec<EventKind> {
    seen.borrow_mut().drain(..).map(|e| e.kind).collect()
}

#[test]
fn every_event_kind_reaches_the_observer_without_values() {
    let w = World::new();
    let (m, seen) = observed(&w, true);
    get(&m).unwrap();
    let mint = seen.borrow()[0].clone();
    assert_eq!(kinds(&seen), [EventKind::Mint]);
    // stamped when the answer arrived (the fake transport takes 50 ms)
    assert_eq!(
        (mint.mints, mint.lifetime_secs, mint.at),
        (Some(1), Some(86_400), START_MS + 50)
    );
    // a memory hit is not an event
    get(&m).unwrap();
    assert!(kinds(&seen).is_empty());
    // stale: a refresh, then its mint
    w.clock.set(START_MS + 70_000_000);
    get(&m).unwrap();
    assert_eq!(kinds(&seen), [EventKind::Refresh, EventKind::Mint]);
    // a failing store: one event per failed call, naming the operation
    w.store.fail.set(true);
    block_on(m.invalidate());
    let failed = seen.borrow()[0].clone();
    assert_eq!(kinds(&seen), [EventKind::StoreError]);
    assert_eq!(failed.detail.as_deref(), Some("kv down"));
    w.store.fail.set(false);
    // a rate limit: the failed request, then the cooldown with its seconds
    w.transport.then(Ok(TokenResponse {
        status: 429,
        retry_after: Some("30".into()),
        headers: Vec::new(),
        body: "{}".into(),
    }));
    get(&m).unwrap_err();
    let events = seen.borrow().clone();
    assert_eq!(kinds(&seen), [EventKind::TokenError, EventKind::Cooldown]);
    assert_eq!(
        (events[0].code, events[0].status),
        (Some("rate_limited"), Some(429))
    );
    assert_eq!(events[1].retry_after, Some(30));
    let json = serde_json::to_string(&events).unwrap();
    assert!(!json.contains(SECRET) && !json.contains("tok-"), "{json}");
    assert!(json.contains(r#""type":"cooldown""#), "{json}");
}

#[test]
fn a_budget_refusal_is_one_event() {
    let w = World::new();
    let (m, seen) = observed(&w, false);
    for _ in 0..11 {
        get(&m).unwrap();
        block_on(m.invalidate());
    }
    for _ in 0..5 {
        assert_eq!(get(&m).unwrap_err().code(), "mint_budget_exhausted");
    }
    let budget: Vec<_> = seen
        .borrow()
        .iter()
        .filter(|e| e.kind == EventKind::BudgetExhausted)
        .cloned()
        .collect();
    assert_eq!(budget.len(), 1);
    assert_eq!(budget[0].code, Some("mint_budget_exhausted"));
}
