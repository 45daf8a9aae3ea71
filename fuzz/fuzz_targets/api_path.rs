//! The API path resolver: any path. Whatever `join_api_path` accepts and a WHATWG URL parser
//! normalises, `check_within_base` lets through only URLs on the base's origin, under its path.
#![no_main]
use autopay_auth::{check_within_base, join_api_path};
use libfuzzer_sys::fuzz_target;

const BASE: &str = "https://api.autopay.io/v1";

fuzz_target!(|data: &[u8]| {
    let path = String::from_utf8_lossy(data);
    let Ok(joined) = join_api_path(BASE, &path) else {
        return;
    };
    let Ok(url) = url::Url::parse(&joined) else {
        return;
    };
    let href = url.as_str();
    if check_within_base(BASE, href).is_ok() {
        assert_eq!(url.scheme(), "https", "{href}");
        assert_eq!(url.host_str(), Some("api.autopay.io"), "{href}");
        assert_eq!(url.port(), None, "{href}");
        assert!(url.username().is_empty() && url.password().is_none(), "{href}");
        let p = url.path();
        assert!(p == "/v1" || p.starts_with("/v1/"), "{href} escaped to {p}");
    }
});
