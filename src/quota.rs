//! Quotas: the ones a user sets (so many token requests per hour, per day, per calendar month
//! in UTC), and the ones a vendor declares in its answers — Auth0's `Auth0-Client-Quota-Limit`
//! and `Auth0-Organization-Quota-Limit`, Okta's `X-Rate-Limit-*`, and the IETF `RateLimit` /
//! `RateLimit-Policy` fields. Both are enforced by the mint budget (`machine/budget.rs`) and
//! kept with the fleet state, so the whole fleet stops asking before the remainder runs out.
//!
//! Plain parsing here: no clock, no I/O.

use crate::error::{Error, field};

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;
/// The farthest a declared reset is believed (a calendar month and a day).
const MAX_RESET_MS: u64 = 32 * DAY_MS;
/// The largest count read from a header or a setting.
const MAX_COUNT: u64 = 1_000_000_000;
/// The most declarations kept (Auth0 declares four: hour and day, client and organization).
pub const MAX_DECLARED: usize = 8;

/// The headers a transport hands over (lowercase), for [`declared`].
pub const QUOTA_HEADERS: &[&str] = &[
    "auth0-client-quota-limit",
    "auth0-organization-quota-limit",
    "x-rate-limit-limit",
    "x-rate-limit-remaining",
    "x-rate-limit-reset",
    "ratelimit",
    "ratelimit-policy",
];

/// A window a user's limit counts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// Any 60 minutes (sliding).
    Hour,
    /// Any 24 hours (sliding).
    Day,
    /// The calendar month in UTC (as vendors bill: it resets at 00:00 UTC on the 1st).
    Month,
}

impl Window {
    /// `hour`, `day` or `month`.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Hour => "hour",
            Window::Day => "day",
            Window::Month => "month",
        }
    }

    /// The first instant counted at `now`, and the instant the oldest request counted at
    /// `now` stops counting (`oldest`: the oldest request counted).
    pub(crate) fn span(self, now: u64, oldest: u64) -> (u64, u64) {
        match self {
            Window::Hour => ((now + 1).saturating_sub(HOUR_MS), oldest + HOUR_MS),
            Window::Day => ((now + 1).saturating_sub(DAY_MS), oldest + DAY_MS),
            Window::Month => (month_start(now), next_month_start(now)),
        }
    }
}

/// At most `max` token requests in one [`Window`], for the whole fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// The window.
    pub window: Window,
    /// Token requests allowed in it (at least 1).
    pub max: u64,
}

impl Limit {
    /// At most `max` an hour.
    pub fn per_hour(max: u64) -> Self {
        Self {
            window: Window::Hour,
            max,
        }
    }

    /// At most `max` a day.
    pub fn per_day(max: u64) -> Self {
        Self {
            window: Window::Day,
            max,
        }
    }

    /// At most `max` a calendar month (UTC).
    pub fn per_month(max: u64) -> Self {
        Self {
            window: Window::Month,
            max,
        }
    }
}

/// Reads limits written as the Worker's `AUTOPAY_MINT_BUDGET` is: `3/hour, 50/day, 1000/month`
/// (each window once). An empty text is no limit.
pub fn parse_limits(text: &str) -> Result<Vec<Limit>, Error> {
    let bad = || {
        Error::config(
            field::MINT_BUDGET,
            "must look like `3/hour, 50/day, 1000/month`: whole numbers from 1, each window once",
        )
    };
    let mut limits: Vec<Limit> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (n, w) = part.split_once('/').ok_or_else(bad)?;
        let max = n.trim().parse::<u64>().map_err(|_| bad())?;
        let window = match w.trim() {
            "hour" => Window::Hour,
            "day" => Window::Day,
            "month" => Window::Month,
            _ => return Err(bad()),
        };
        if limits.iter().any(|l| l.window == window) {
            return Err(bad());
        }
        limits.push(Limit { window, max });
    }
    check_limits(&limits).map_err(|_| bad())?;
    Ok(limits)
}

/// Every limit allows at least one request and at most [`MAX_COUNT`].
pub(crate) fn check_limits(limits: &[Limit]) -> Result<(), Error> {
    if limits.iter().any(|l| l.max == 0 || l.max > MAX_COUNT) {
        return Err(Error::config(
            field::MINT_BUDGET,
            "each window must allow from 1 to 1000000000 token requests",
        ));
    }
    Ok(())
}

/// A quota the token endpoint declared in an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Declared {
    /// Which one: `auth0-client:per_hour`, `auth0-organization:per_day`, `okta`,
    /// `ratelimit:default`, …
    pub name: String,
    /// Its size, when declared.
    pub limit: Option<u64>,
    /// Requests left, as the answer said.
    pub remaining: u64,
    /// When it resets (ms since the epoch).
    pub reset_ms: u64,
    /// When the request whose answer declared it was sent: requests sent later are not in
    /// `remaining`.
    pub seen_ms: u64,
}

impl Declared {
    /// Requests kept in reserve: 2 % of a declared size (vendors count eventually; Auth0 says
    /// so), none when the size is unknown.
    pub fn reserve(&self) -> u64 {
        self.limit.map_or(0, |q| q / 50)
    }
}

/// The quotas declared by `headers` (lowercase names, see [`QUOTA_HEADERS`]) in the answer to
/// a request sent at `sent_ms`, read at `now_ms`. What does not parse is ignored.
pub fn declared(headers: &[(String, String)], sent_ms: u64, now_ms: u64) -> Vec<Declared> {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let mut out = Vec::new();
    let mut push = |name: String, limit: Option<u64>, remaining: u64, reset_in_ms: u64| {
        if out.len() < MAX_DECLARED && remaining <= MAX_COUNT {
            out.push(Declared {
                name,
                limit: limit.filter(|q| *q <= MAX_COUNT),
                remaining,
                reset_ms: now_ms + reset_in_ms.min(MAX_RESET_MS),
                seen_ms: sent_ms,
            });
        }
    };
    // Auth0: `b=per_hour;q=10;r=7;t=3540,b=per_day;q=50;r=47;t=43200`
    for (header, who) in [
        ("auth0-client-quota-limit", "auth0-client"),
        ("auth0-organization-quota-limit", "auth0-organization"),
    ] {
        for item in get(header).map(items).unwrap_or_default() {
            if let (Some(b), Some(r), Some(t)) = (item.param("b"), item.number("r"), item.number("t")) {
                push(format!("{who}:{b}"), item.number("q"), r, t * 1000);
            }
        }
    }
    // Okta: the reset is an instant (epoch seconds)
    let number = |name: &str| get(name).and_then(|v| v.trim().parse::<u64>().ok());
    if let (Some(r), Some(reset)) = (number("x-rate-limit-remaining"), number("x-rate-limit-reset")) {
        let reset_in = (reset.saturating_mul(1000)).saturating_sub(now_ms);
        if reset_in > 0 {
            push("okta".into(), number("x-rate-limit-limit"), r, reset_in);
        }
    }
    // IETF (draft-ietf-httpapi-ratelimit-headers): `RateLimit: "default";r=42;t=1800`, the
    // size from `RateLimit-Policy: "default";q=100;w=3600`; and the older single item
    // `RateLimit: limit=100, remaining=42, reset=1800`
    let policies = get("ratelimit-policy").map(items).unwrap_or_default();
    let limits = get("ratelimit").map(items).unwrap_or_default();
    for item in &limits {
        if let (Some(name), Some(r)) = (item.name.as_deref(), item.number("r")) {
            let q = policies
                .iter()
                .find(|p| p.name.as_deref() == Some(name))
                .and_then(|p| p.number("q"));
            let t = item.number("t").unwrap_or(0);
            if t > 0 {
                push(format!("ratelimit:{name}"), q, r, t * 1000);
            }
        }
    }
    let old = |k: &str| limits.iter().find_map(|i| i.number(k));
    if let (Some(r), Some(t)) = (old("remaining"), old("reset"))
        && t > 0
    {
        push("ratelimit".into(), old("limit"), r, t * 1000);
    }
    out
}

/// One list member of a header: an optional bare name (`"default"`) and `key=value`
/// parameters.
struct Item {
    name: Option<String>,
    params: Vec<(String, String)>,
}

impl Item {
    fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    fn number(&self, key: &str) -> Option<u64> {
        self.param(key)?.parse().ok()
    }
}

fn unquote(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(s)
}

fn items(header: &str) -> Vec<Item> {
    header
        .split(',')
        .take(16)
        .map(|member| {
            let mut name = None;
            let mut params = Vec::new();
            for (i, part) in member.split(';').enumerate() {
                match part.split_once('=') {
                    Some((k, v)) => params.push((k.trim().to_owned(), unquote(v).to_owned())),
                    None if i == 0 && !part.trim().is_empty() => name = Some(unquote(part).to_owned()),
                    None => {}
                }
            }
            Item { name, params }
        })
        .collect()
}

/// Days since the epoch of a civil date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil year and month of a day since the epoch (Howard Hinnant's `civil_from_days`).
fn civil_month(days: i64) -> (i64, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m)
}

/// 00:00 UTC on the 1st of the month of `ms`.
pub fn month_start(ms: u64) -> u64 {
    let (y, m) = civil_month((ms / DAY_MS) as i64);
    days_from_civil(y, m, 1) as u64 * DAY_MS
}

/// 00:00 UTC on the 1st of the month after the one of `ms`.
pub fn next_month_start(ms: u64) -> u64 {
    let (y, m) = civil_month((ms / DAY_MS) as i64);
    let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    days_from_civil(y, m, 1) as u64 * DAY_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn auth0_declares_each_bucket_for_client_and_organization() {
        let headers = h(&[
            (
                "Auth0-Client-Quota-Limit",
                "b=per_hour;q=10;r=7;t=3540,b=per_day;q=50;r=47;t=43200",
            ),
            ("auth0-organization-quota-limit", "b=per_hour;q=100;r=0;t=60"),
        ]);
        let d = declared(&headers, 900, 1_000);
        let names: Vec<_> = d.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "auth0-client:per_hour",
                "auth0-client:per_day",
                "auth0-organization:per_hour"
            ]
        );
        assert_eq!(
            d[0],
            Declared {
                name: "auth0-client:per_hour".into(),
                limit: Some(10),
                remaining: 7,
                reset_ms: 1_000 + 3_540_000,
                seen_ms: 900,
            }
        );
        assert_eq!((d[2].remaining, d[2].reset_ms), (0, 61_000));
        assert_eq!(d[1].reserve(), 1, "2 % of 50");
    }

    #[test]
    fn okta_resets_at_an_instant_and_ietf_after_seconds() {
        let now = 1_700_000_000_000;
        let okta = h(&[
            ("x-rate-limit-limit", "3"),
            ("x-rate-limit-remaining", "1"),
            ("x-rate-limit-reset", "1700000060"),
        ]);
        let d = declared(&okta, now, now);
        assert_eq!(
            (d[0].name.as_str(), d[0].limit, d[0].remaining),
            ("okta", Some(3), 1)
        );
        assert_eq!(d[0].reset_ms, now + 60_000);
        let past = h(&[
            ("x-rate-limit-remaining", "0"),
            ("x-rate-limit-reset", "1600000000"),
        ]);
        assert!(
            declared(&past, now, now).is_empty(),
            "a reset already passed declares nothing"
        );

        let ietf = h(&[
            ("RateLimit-Policy", "\"hourly\";q=3;w=3600, \"burst\";q=100;w=1"),
            ("RateLimit", "\"hourly\";r=2;t=1800"),
        ]);
        let d = declared(&ietf, now, now);
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].name.as_str(), d[0].limit, d[0].remaining, d[0].reset_ms),
            ("ratelimit:hourly", Some(3), 2, now + 1_800_000)
        );
        let older = h(&[("ratelimit", "limit=3, remaining=0, reset=30")]);
        let d = declared(&older, now, now);
        assert_eq!(
            (d[0].limit, d[0].remaining, d[0].reset_ms),
            (Some(3), 0, now + 30_000)
        );
    }

    #[test]
    fn nonsense_declares_nothing_and_resets_are_capped() {
        for bad in [
            ("auth0-client-quota-limit", "b=per_hour;q=x;r=;t=5"),
            ("auth0-client-quota-limit", ""),
            ("ratelimit", "\"a\";r=-1;t=5"),
            ("ratelimit", "\"a\";r=1"),
            ("x-rate-limit-remaining", "5"),
        ] {
            assert!(declared(&h(&[bad]), 0, 0).is_empty(), "{bad:?}");
        }
        let far = h(&[("ratelimit", "\"a\";r=1;t=999999999")]);
        assert_eq!(declared(&far, 0, 0)[0].reset_ms, MAX_RESET_MS);
        let many = "b=a;r=1;t=1,".repeat(40);
        assert_eq!(
            declared(&h(&[("auth0-client-quota-limit", &many)]), 0, 0).len(),
            MAX_DECLARED
        );
    }

    #[test]
    fn limits_read_as_written() {
        assert_eq!(
            parse_limits(" 3/hour, 50/day,1000/month ").unwrap(),
            vec![Limit::per_hour(3), Limit::per_day(50), Limit::per_month(1000)]
        );
        assert_eq!(parse_limits("").unwrap(), vec![]);
        for bad in ["3", "0/hour", "3/week", "1/hour,2/hour", "x/day", "-1/day"] {
            assert_eq!(
                parse_limits(bad).unwrap_err().field(),
                Some(field::MINT_BUDGET),
                "{bad}"
            );
        }
    }

    #[test]
    fn calendar_months_in_utc() {
        // 2026-12-06T19:34:35Z
        let now = 1_796_585_675_000;
        assert_eq!(month_start(now), 1_796_083_200_000, "2026-12-01T00:00Z");
        assert_eq!(next_month_start(now), 1_798_761_600_000, "2027-01-01T00:00Z");
        // 2024-02-29T12:00Z: a leap February
        let leap = 1_709_208_000_000;
        assert_eq!(month_start(leap), 1_706_745_600_000, "2024-02-01");
        assert_eq!(next_month_start(leap), 1_709_251_200_000, "2024-03-01");
        assert_eq!(
            month_start(1_709_251_200_000),
            1_709_251_200_000,
            "the first instant is its own month"
        );
        let (from, until) = Window::Month.span(now, 0);
        assert_eq!((from, until), (month_start(now), next_month_start(now)));
        let (from, until) = Window::Hour.span(10_000_000, 9_000_000);
        assert_eq!((from, until), (10_000_001 - HOUR_MS, 9_000_000 + HOUR_MS));
    }
}
