//! The sealed-record opener: any stored value. It never panics, nothing but a value sealed with
//! this key opens, and every record sealed opens to itself.
#![no_main]
use autopay_auth::{ClientSecret, Sealer, TokenRecord, is_bearer_token};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let sealer = Sealer::new(&ClientSecret::new("fuzz-secret"), "autopay-auth:v2:fuzz");
    let text = String::from_utf8_lossy(data);
    if let Some(record) = sealer.open(&text) {
        // only a genuine seal opens: the fuzzer cannot forge one
        assert!(is_bearer_token(&record.access_token));
        panic!("a value the fuzzer made opened: {text:?}");
    }
    // round trip: a record made from the input seals and opens to itself
    let token: String = text.chars().filter(|c| c.is_ascii_alphanumeric()).take(64).collect();
    if token.is_empty() {
        return;
    }
    let record = TokenRecord {
        access_token: token,
        token_type: "Bearer".into(),
        scope: None,
        issued_at_ms: u64::from(data[0]) * 1_000,
        expires_at_ms: u64::from(data[0]) * 1_000 + 60_000,
    };
    let nonce = [data[0]; 12];
    let sealed = sealer.seal(&record, nonce);
    assert_eq!(sealer.open(&sealed), Some(record));
    // a seal does not open under another key
    let other = Sealer::new(&ClientSecret::new("fuzz-secret"), "autopay-auth:v2:other");
    assert_eq!(other.open(&sealed), None);
});
