//! The settings both JS edges read — the npm package's options and the Worker's variables —
//! in one place: each setting's name in the core, in the npm options and in the Worker's `env`,
//! and what its value must be. Each edge reads its own medium (a JS object; `env` strings) and
//! hands the values here; every refusal is an `invalid_config` naming the core field, which the
//! edge renames with this table.

use crate::config::{BodyFormat, ClientAuth, DEFAULT_API_BASE_URL, check_url, is_autopay_token_url};
use crate::error::{Error, field};
use crate::lifecycle::{Policy, StoreOutage};
use crate::wire::MAX_LIFETIME_SECS;

/// One setting: its core [`field`], its npm option and its Worker variable (if it has one).
pub struct Setting {
    /// The core's name (`Error::field`).
    pub field: &'static str,
    /// The npm option.
    pub option: &'static str,
    /// The Worker's `env` name.
    pub variable: Option<&'static str>,
}

const fn s(field: &'static str, option: &'static str, variable: Option<&'static str>) -> Setting {
    Setting {
        field,
        option,
        variable,
    }
}

/// Every setting with a name in the core.
pub const SETTINGS: &[Setting] = &[
    s(field::TOKEN_URL, "tokenUrl", Some("AUTOPAY_TOKEN_URL")),
    s(field::CLIENT_ID, "clientId", Some("AUTOPAY_CLIENT_ID")),
    s(
        field::CLIENT_SECRET,
        "clientSecret",
        Some("AUTOPAY_CLIENT_SECRET"),
    ),
    s(field::AUDIENCE, "audience", Some("AUTOPAY_AUDIENCE")),
    s(field::API_BASE_URL, "apiBaseUrl", Some("AUTOPAY_API_BASE")),
    s(
        field::TOKEN_REQUEST,
        "tokenRequest",
        Some("AUTOPAY_TOKEN_REQUEST"),
    ),
    s(field::CLIENT_AUTH, "clientAuth", Some("AUTOPAY_CLIENT_AUTH")),
    s(field::PRIVATE_KEY, "privateKey", Some("AUTOPAY_PRIVATE_KEY")),
    s(
        field::PRIVATE_KEY_ALG,
        "privateKeyAlg",
        Some("AUTOPAY_PRIVATE_KEY_ALG"),
    ),
    s(
        field::PRIVATE_KEY_ID,
        "privateKeyId",
        Some("AUTOPAY_PRIVATE_KEY_ID"),
    ),
    s(field::CERTIFICATE, "certificate", Some("AUTOPAY_CERTIFICATE")),
    s(field::X5C, "x5c", Some("AUTOPAY_X5C")),
    s(field::DPOP_KEY, "dpopKey", Some("AUTOPAY_DPOP_KEY")),
    s(field::DPOP_KEY_ALG, "dpopKeyAlg", Some("AUTOPAY_DPOP_KEY_ALG")),
    s(field::SCOPE, "scope", Some("AUTOPAY_SCOPE")),
    s(field::RESOURCE, "resource", Some("AUTOPAY_RESOURCE")),
    s(field::LABEL, "label", None),
    s(field::TOKEN_PARAMS, "tokenParams", None),
    s(field::TOKEN_HEADERS, "tokenHeaders", None),
    s(
        field::DEFAULT_EXPIRES_IN,
        "defaultExpiresInSec",
        Some("AUTOPAY_DEFAULT_EXPIRES_IN"),
    ),
    s(
        field::REFRESH_RATIO,
        "refreshRatio",
        Some("AUTOPAY_REFRESH_RATIO"),
    ),
    s(
        field::EXPIRY_MARGIN,
        "expiryMarginSec",
        Some("AUTOPAY_EXPIRY_MARGIN_SEC"),
    ),
    s(
        field::EXPIRY_MARGIN_RATIO,
        "expiryMarginRatio",
        Some("AUTOPAY_EXPIRY_MARGIN_RATIO"),
    ),
    s(
        field::REFRESH_JITTER,
        "refreshJitterSec",
        Some("AUTOPAY_REFRESH_JITTER_SEC"),
    ),
    s(field::REQUEST_TIMEOUT, "timeoutMs", Some("AUTOPAY_TIMEOUT_MS")),
    s(field::STORE_TIMEOUT, "storeTimeoutMs", None),
    s(field::STORE_OUTAGE, "storeOutage", None),
    s(field::STORE_WAIT, "storeWaitMs", None),
    s(field::MINT_BUDGET, "mintBudget", Some("AUTOPAY_MINT_BUDGET")),
];

fn find(core: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.field == core)
}

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The Worker variable of a core field, at compile time (for the Worker's constants): a field
/// without one does not compile.
pub const fn variable(core: &str) -> &'static str {
    let mut i = 0;
    while i < SETTINGS.len() {
        if same(SETTINGS[i].field, core) {
            match SETTINGS[i].variable {
                Some(v) => return v,
                None => panic!("a setting without a Worker variable"),
            }
        }
        i += 1;
    }
    panic!("not a setting")
}

/// The npm option that sets a core field.
pub fn option_name(core: &str) -> Option<&'static str> {
    find(core).map(|s| s.option)
}

/// The Worker variable that sets a core field.
pub fn variable_name(core: &str) -> Option<&'static str> {
    find(core).and_then(|s| s.variable)
}

/// A number setting of the lifecycle [`Policy`]: its core field, the range it may take (in the
/// unit users write: seconds for `…Sec`), and how many of the policy's unit one of those is.
struct PolicyNumber {
    field: &'static str,
    min: f64,
    max: f64,
    range: &'static str,
    scale: f64,
}

const fn n(field: &'static str, min: f64, max: f64, range: &'static str, scale: f64) -> PolicyNumber {
    PolicyNumber {
        field,
        min,
        max,
        range,
        scale,
    }
}

/// Every number setting of the policy, with its range: the one table both edges check against.
const POLICY_NUMBERS: &[PolicyNumber] = &[
    n(field::REFRESH_RATIO, 0.01, 1.0, "0.01 to 1", 1.0),
    n(field::EXPIRY_MARGIN, 0.0, 86_400.0, "0 to 86400", 1000.0),
    n(field::EXPIRY_MARGIN_RATIO, 0.0, 0.5, "0 to 0.5", 1.0),
    n(field::REFRESH_JITTER, 0.0, 3_600.0, "0 to 3600", 1000.0),
    n(field::REQUEST_TIMEOUT, 1.0, 600_000.0, "1 to 600000", 1.0),
    n(field::STORE_TIMEOUT, 1.0, 60_000.0, "1 to 60000", 1.0),
    n(field::STORE_WAIT, 0.0, 600_000.0, "0 to 600000", 1.0),
];

/// The lifecycle policy from an edge's settings: `number(field)` gives a number setting's value
/// as the user wrote it (`None` when unset; `NaN` for one that is not a number), `store_outage`
/// the `storeOutage` text, `limits` the mint budget. Every value is checked against the one
/// table of ranges; a refusal names the core field.
pub fn policy(
    number: &dyn Fn(&'static str) -> Option<f64>,
    store_outage: Option<&str>,
    limits: Vec<crate::quota::Limit>,
) -> Result<Policy, Error> {
    let d = Policy::default();
    // `default` in the policy's unit (ms); a value set is in the user's unit, scaled
    let value = |field: &'static str, default: u64| -> Result<u64, Error> {
        let spec = POLICY_NUMBERS
            .iter()
            .find(|p| p.field == field)
            .expect("a policy number");
        Ok(match number(field) {
            None => default,
            Some(v) if v.is_finite() && (spec.min..=spec.max).contains(&v) => (v * spec.scale) as u64,
            Some(_) => {
                return Err(Error::config(
                    field,
                    format!("must be a number from {}", spec.range),
                ));
            }
        })
    };
    let ratio = |field: &'static str, default: f64| -> Result<f64, Error> {
        let spec = POLICY_NUMBERS
            .iter()
            .find(|p| p.field == field)
            .expect("a policy number");
        match number(field) {
            None => Ok(default),
            Some(v) if v.is_finite() && (spec.min..=spec.max).contains(&v) => Ok(v),
            Some(_) => Err(Error::config(
                field,
                format!("must be a number from {}", spec.range),
            )),
        }
    };
    let policy = Policy {
        refresh_ratio: ratio(field::REFRESH_RATIO, d.refresh_ratio)?,
        expiry_margin_ms: value(field::EXPIRY_MARGIN, d.expiry_margin_ms)?,
        expiry_margin_ratio: ratio(field::EXPIRY_MARGIN_RATIO, d.expiry_margin_ratio)?,
        refresh_jitter_ms: value(field::REFRESH_JITTER, d.refresh_jitter_ms)?,
        request_timeout_ms: value(field::REQUEST_TIMEOUT, d.request_timeout_ms)?,
        store_timeout_ms: value(field::STORE_TIMEOUT, d.store_timeout_ms)?,
        store_wait_ms: value(field::STORE_WAIT, d.store_wait_ms)?,
        store_outage: match store_outage.map(str::trim) {
            None | Some("mint") => StoreOutage::Mint,
            Some("fail") => StoreOutage::Fail,
            Some(_) => return Err(Error::config(field::STORE_OUTAGE, "must be 'mint' or 'fail'")),
        },
        limits,
        ..d
    };
    policy.validate()?;
    Ok(policy)
}

/// `client_secret_post` (the default when absent), `client_secret_basic` or `private_key_jwt`.
/// The mutual-TLS methods are refused by name: the JS hosts' `fetch` cannot present a client
/// certificate (browsers and edge functions cannot at all) — the native client can.
pub fn client_auth(text: Option<&str>) -> Result<ClientAuth, Error> {
    client_auth_with(text, false)
}

/// [`client_auth`], taking the mutual-TLS methods too when the host can present a client
/// certificate (`mutual_tls`: the Worker with its mTLS certificate binding).
pub fn client_auth_with(text: Option<&str>, mutual_tls: bool) -> Result<ClientAuth, Error> {
    match text.map(str::trim) {
        None => Ok(ClientAuth::default()),
        Some(name) => match ClientAuth::parse(name) {
            Some(auth) if auth.is_mutual_tls() && !mutual_tls => Err(Error::config(
                field::CLIENT_AUTH,
                format!(
                    "cannot be {name} here: this host's fetch cannot present a client certificate \
                     (RFC 8705); use the native Rust client for mutual TLS"
                ),
            )),
            Some(auth) => Ok(auth),
            None => Err(Error::config(
                field::CLIENT_AUTH,
                "must be client_secret_post, client_secret_basic or private_key_jwt",
            )),
        },
    }
}

/// `json` (the default when absent) or `form`.
pub fn body_format(text: Option<&str>) -> Result<BodyFormat, Error> {
    match text.map(str::trim) {
        None | Some("json") => Ok(BodyFormat::Json),
        Some("form") => Ok(BodyFormat::Form),
        Some(_) => Err(Error::config(field::TOKEN_REQUEST, "must be json or form")),
    }
}

/// The lifetime to assume for an answer without `expires_in`: whole seconds, 1 to
/// [`MAX_LIFETIME_SECS`].
pub fn default_expires_in(secs: f64) -> Result<u64, Error> {
    if secs.fract() == 0.0 && (1.0..=MAX_LIFETIME_SECS as f64).contains(&secs) {
        return Ok(secs as u64);
    }
    let why = format!("must be a whole number of seconds from 1 to {MAX_LIFETIME_SECS}");
    Err(Error::config(field::DEFAULT_EXPIRES_IN, why))
}

/// A URL setting (`href`: the platform's normalised form, `None` when it is not absolute),
/// checked by the core's rules; the API base may not have a query (paths are joined to it).
pub fn url(core: &str, href: Option<String>) -> Result<String, Error> {
    let href = href.ok_or_else(|| Error::config(core, "must be an absolute URL"))?;
    check_url(core, &href)?;
    if core == field::API_BASE_URL && href.contains('?') {
        return Err(Error::config(core, "must not have a query"));
    }
    Ok(href)
}

/// The API base when none is set: Autopay's API for a token from Autopay's endpoint, and none
/// for any other endpoint (its token would go to Autopay's API).
pub fn default_api_base(token_url: &str) -> Option<&'static str> {
    is_autopay_token_url(token_url).then_some(DEFAULT_API_BASE_URL)
}

/// Why an API call has no base: the token's endpoint is not Autopay's and none was set.
pub fn api_base_required() -> Error {
    Error::config(
        field::API_BASE_URL,
        "is required when the token endpoint is not Autopay's: without it the token would go to \
         Autopay's API",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_core_setting_has_one_row_and_each_name_is_unique() {
        for (i, a) in SETTINGS.iter().enumerate() {
            for b in &SETTINGS[i + 1..] {
                assert!(
                    a.field != b.field && a.option != b.option,
                    "{} / {}",
                    a.field,
                    b.field
                );
                assert!(a.variable.is_none() || a.variable != b.variable);
            }
        }
        assert_eq!(
            option_name(field::DEFAULT_EXPIRES_IN),
            Some("defaultExpiresInSec")
        );
        assert_eq!(variable_name(field::API_BASE_URL), Some("AUTOPAY_API_BASE"));
        assert_eq!(variable_name(field::REFRESH_RATIO), Some("AUTOPAY_REFRESH_RATIO"));
        assert_eq!(variable_name(field::STORE_OUTAGE), None);
    }

    #[test]
    fn the_policy_is_read_by_one_table_of_ranges() {
        let none = |_: &'static str| None;
        assert_eq!(policy(&none, None, Vec::new()).unwrap(), Policy::default());
        let set = |f: &'static str| match f {
            field::REFRESH_RATIO => Some(0.5),
            field::EXPIRY_MARGIN => Some(60.0),
            field::REQUEST_TIMEOUT => Some(2_000.0),
            _ => None,
        };
        let p = policy(&set, Some("fail"), Vec::new()).unwrap();
        assert_eq!(
            (
                p.refresh_ratio,
                p.expiry_margin_ms,
                p.request_timeout_ms,
                p.store_outage
            ),
            (0.5, 60_000, 2_000, StoreOutage::Fail),
            "seconds are scaled to the policy's milliseconds"
        );
        for (f, bad) in [
            (field::REFRESH_RATIO, 1.5),
            (field::REFRESH_RATIO, f64::NAN),
            (field::EXPIRY_MARGIN_RATIO, 0.6),
            (field::REQUEST_TIMEOUT, 0.0),
            (field::REFRESH_JITTER, -1.0),
        ] {
            let one = move |g: &'static str| (g == f).then_some(bad);
            assert_eq!(
                policy(&one, None, Vec::new()).unwrap_err().field(),
                Some(f),
                "{f} = {bad}"
            );
        }
        assert_eq!(
            policy(&none, Some("maybe"), Vec::new()).unwrap_err().field(),
            Some(field::STORE_OUTAGE)
        );
    }

    #[test]
    fn each_check_names_its_field() {
        assert_eq!(
            client_auth(Some(" private_key_jwt ")).unwrap(),
            ClientAuth::PrivateKeyJwt
        );
        assert_eq!(
            client_auth(Some("basic")).unwrap_err().field(),
            Some(field::CLIENT_AUTH)
        );
        assert_eq!(body_format(None).unwrap(), BodyFormat::Json);
        assert_eq!(
            body_format(Some("xml")).unwrap_err().field(),
            Some(field::TOKEN_REQUEST)
        );
        assert_eq!(default_expires_in(3600.0).unwrap(), 3600);
        for bad in [0.0, 1.5, MAX_LIFETIME_SECS as f64 + 1.0] {
            assert_eq!(
                default_expires_in(bad).unwrap_err().field(),
                Some(field::DEFAULT_EXPIRES_IN)
            );
        }
        let base = |u: &str| url(field::API_BASE_URL, Some(u.into()));
        assert!(base("https://api.example.com/v1").is_ok());
        let query = base("https://api.example.com/?a=1").unwrap_err();
        assert!(query.to_string().contains("query"), "{query}");
        assert!(url(field::TOKEN_URL, None).is_err());
        assert_eq!(
            default_api_base("https://api-auth.autopay.io/oauth/token"),
            Some(DEFAULT_API_BASE_URL)
        );
        assert_eq!(default_api_base("https://login.example.com/oauth2/token"), None);
        assert_eq!(api_base_required().field(), Some(field::API_BASE_URL));
        assert!(
            url(field::TOKEN_URL, Some("http://example.com/token".into())).is_err(),
            "https only"
        );
    }
}
