//! The token answer parser: any status, `Retry-After` and body. It never panics, and whatever
//! it accepts is a token that can go into a header, with a bounded lifetime counted from the
//! send time.
#![no_main]
use autopay_auth::{MAX_LIFETIME_SECS, TokenResponse, is_bearer_token, process_token_response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let status = u16::from_le_bytes([data[0], data[1]]) % 700;
    let split = usize::from(data[2]).min(data.len() - 3);
    let text = String::from_utf8_lossy(&data[3..]);
    let (retry_after, body) = text.split_at(text.floor_char_boundary(split));
    let response = TokenResponse {
        status,
        retry_after: (!retry_after.is_empty()).then(|| retry_after.to_owned()),
        quota: Vec::new(),
        body: body.to_owned(),
    };
    let sent_at = 1_700_000_000_000;
    // with and without a lifetime to assume for an answer that has no `expires_in`
    let assumed = (data[2] & 1 == 1).then_some(3_600);
    match process_token_response(&response, sent_at, sent_at + 5, assumed) {
        Ok(record) => {
            assert_eq!(status, 200);
            assert!(is_bearer_token(&record.access_token));
            assert_eq!(record.issued_at_ms, sent_at);
            assert!(record.expires_at_ms > sent_at && record.lifetime_ms() <= MAX_LIFETIME_SECS * 1000);
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            if let Some(r) = e.retry_after() {
                assert!(status == 429 || status >= 500 || r == 0 || status >= 400);
            }
        }
    }
});
