//! What both JavaScript-hosted edges share (the npm package and the Worker): the platform
//! clock, the fetch transport, the `KVNamespace` adapter, and reading JS errors.

pub(crate) mod errors;
pub(crate) mod fetch;
pub(crate) mod kv;

/// The platform's WHATWG URL parser: the normalised `href`, or `None` when `url` is not absolute.
pub(crate) fn normalize_url(url: &str) -> Option<String> {
    web_sys::Url::new(url).ok().map(|u| u.href())
}

/// The platform clock: `Date.now()`.
#[derive(Clone, Copy)]
pub(crate) struct DateClock;

impl crate::Clock for DateClock {
    fn now_ms(&self) -> u64 {
        js_sys::Date::now() as u64
    }
}
