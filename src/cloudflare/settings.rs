//! The Worker's configuration, read from `env`. The names are the interface (they match
//! `wrangler.toml` and the README); problems name the setting, never its value.

use js_sys::Reflect;
use serde::Serialize;
use wasm_bindgen::JsValue;
use worker::Env;

use super::caller::CallerKeys;
use crate::js::normalize_url;
use crate::settings::{self, variable};
use crate::{
    ClientAuth, ClientSecret, Config, DEFAULT_API_BASE_URL, DEFAULT_AUDIENCE, DEFAULT_TOKEN_URL, Policy,
    PrivateKey, field, parse_limits,
};

/// Secret: the Autopay Client ID.
pub const CLIENT_ID: &str = variable(field::CLIENT_ID);
/// Secret: the Autopay Client Secret.
pub const CLIENT_SECRET: &str = variable(field::CLIENT_SECRET);
/// Secret: comma-separated keys callers must present as `Authorization: Bearer <key>`.
pub const PROXY_API_KEYS: &str = "PROXY_API_KEYS";
/// Secret (optional): comma-separated keys that may read `/healthz` in detail and nothing else —
/// for monitoring, which should not hold a key that also fetches tokens and proxies.
pub const HEALTH_API_KEYS: &str = "HEALTH_API_KEYS";
/// Secret (optional): comma-separated keys for the operator's lever, `POST /token/invalidate`
/// (drop the current token everywhere) — none of them a caller's or a monitor's key.
pub const OPERATOR_API_KEYS: &str = "OPERATOR_API_KEYS";
/// Var: the token endpoint.
pub const TOKEN_URL: &str = variable(field::TOKEN_URL);
/// Var: the audience (`none` sends none).
pub const AUDIENCE: &str = variable(field::AUDIENCE);
/// Var: `json` (default) or `form`.
pub const TOKEN_REQUEST: &str = variable(field::TOKEN_REQUEST);
/// Var: `client_secret_post` (default), `client_secret_basic` or `private_key_jwt`.
pub const CLIENT_AUTH: &str = variable(field::CLIENT_AUTH);
/// Secret: the private key for `private_key_jwt` (a private JWK as JSON, or a PKCS#8 PEM).
pub const PRIVATE_KEY: &str = variable(field::PRIVATE_KEY);
/// Var: the key's JWS algorithm (else the key decides).
pub const PRIVATE_KEY_ALG: &str = variable(field::PRIVATE_KEY_ALG);
/// Var: the key's id (`kid`).
pub const PRIVATE_KEY_ID: &str = variable(field::PRIVATE_KEY_ID);
/// Var: the key's X.509 certificate (PEM), named in each assertion by `x5t#S256`.
pub const CERTIFICATE: &str = variable(field::CERTIFICATE);
/// Var: `true` sends the certificate chain in each assertion (`x5c`).
pub const X5C: &str = variable(field::X5C);
/// Var: the scope to ask for.
pub const SCOPE: &str = variable(field::SCOPE);
/// Var: resource indicators (RFC 8707), separated by spaces.
pub const RESOURCE: &str = variable(field::RESOURCE);
/// Var: seconds to assume when an answer has no `expires_in`.
pub const DEFAULT_EXPIRES_IN: &str = variable(field::DEFAULT_EXPIRES_IN);
/// Var: where proxied calls go.
pub const API_BASE: &str = variable(field::API_BASE_URL);
/// Var: the fleet's own limits on token requests (`3/hour, 50/day, 1000/month`).
pub const MINT_BUDGET: &str = variable(field::MINT_BUDGET);
/// KV namespace binding for the token record.
pub const TOKENS_KV: &str = "AUTOPAY_TOKENS";
/// Durable Object binding: the one minting authority.
pub const TOKEN_MINTER: &str = "TOKEN_MINTER";

/// One thing wrong with the configuration.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// The setting's name.
    pub setting: &'static str,
    /// What is wrong (never the value).
    pub problem: String,
}

/// The configuration, validated.
pub struct Settings {
    pub config: Config,
    /// The lifecycle policy: the defaults, with the mint budget's limits.
    pub policy: Policy,
    pub api_base: String,
    pub caller_keys: CallerKeys,
    /// Keys for the detailed `/healthz` only (empty when not set).
    pub health_keys: Option<CallerKeys>,
    /// Keys for the operator's lever only (none when not set: the lever is off).
    pub operator_keys: Option<CallerKeys>,
}

fn raw(env: &Env, name: &str) -> Option<String> {
    Reflect::get(env, &JsValue::from_str(name)).ok()?.as_string()
}

fn present(env: &Env, name: &str) -> bool {
    Reflect::get(env, &JsValue::from_str(name)).is_ok_and(|v| !v.is_undefined() && !v.is_null())
}

/// The raw values of every setting, in [`fingerprint`]'s order.
pub type Fingerprint = [Option<String>; 19];

/// The raw values that decide the settings, so an isolate can reuse what it built from them.
pub fn fingerprint(env: &Env) -> Fingerprint {
    [
        CLIENT_ID,
        CLIENT_SECRET,
        PROXY_API_KEYS,
        HEALTH_API_KEYS,
        OPERATOR_API_KEYS,
        TOKEN_URL,
        AUDIENCE,
        API_BASE,
        TOKEN_REQUEST,
        CLIENT_AUTH,
        PRIVATE_KEY,
        PRIVATE_KEY_ALG,
        PRIVATE_KEY_ID,
        CERTIFICATE,
        X5C,
        SCOPE,
        RESOURCE,
        DEFAULT_EXPIRES_IN,
        MINT_BUDGET,
    ]
    .map(|n| raw(env, n))
}

/// A value checked by the settings' rules; a refusal is kept, named by its variable.
fn checked<T>(problems: &mut Vec<Problem>, r: Result<T, crate::Error>) -> Option<T> {
    r.map_err(|e| problems.push(Problem::from_error(e))).ok()
}

impl Problem {
    /// The problem an `invalid_config` error describes, named by its Worker setting.
    fn from_error(e: crate::Error) -> Self {
        let setting = e.field().and_then(settings::variable_name).unwrap_or(API_BASE);
        let problem = match e {
            crate::Error::InvalidConfig { reason, .. } => reason,
            other => other.to_string(),
        };
        Problem { setting, problem }
    }
}

impl Settings {
    /// Reads and checks everything; every problem is reported, not just the first.
    pub fn read(env: &Env) -> Result<Settings, Vec<Problem>> {
        let mut problems = Vec::new();
        let required = |problems: &mut Vec<Problem>, name: &'static str| match raw(env, name) {
            Some(v) if !v.trim().is_empty() => Some(v),
            _ => {
                problems.push(Problem {
                    setting: name,
                    problem: "is missing or empty".into(),
                });
                None
            }
        };
        let client_id = required(&mut problems, CLIENT_ID);
        let keys = required(&mut problems, PROXY_API_KEYS);
        let set = |name: &str| raw(env, name).filter(|v| !v.trim().is_empty());
        let client_auth = checked(&mut problems, settings::client_auth(set(CLIENT_AUTH).as_deref()));
        // the secret is required unless the client signs with a key (then the builder refuses one)
        // `Some(None)`: none, as private_key_jwt wants; `None`: missing (already a problem)
        let secret = match (client_auth, set(CLIENT_SECRET)) {
            (Some(ClientAuth::PrivateKeyJwt), s) => Some(s.map(ClientSecret::new)),
            _ => required(&mut problems, CLIENT_SECRET).map(|s| Some(ClientSecret::new(s))),
        };
        // `Some(None)`: not set; `None`: set but unusable (already a problem)
        let private_key = match set(PRIVATE_KEY) {
            None => Some(None),
            Some(text) => {
                let (alg, kid) = (set(PRIVATE_KEY_ALG), set(PRIVATE_KEY_ID));
                let x5c = match set(X5C).as_deref().map(str::trim) {
                    None | Some("false") => Ok(false),
                    Some("true") => Ok(true),
                    Some(_) => Err(crate::Error::config(field::X5C, "must be true or false")),
                };
                let key =
                    PrivateKey::parse(&text, alg.as_deref(), kid.as_deref()).and_then(|key| {
                        match set(CERTIFICATE) {
                            Some(pem) => key.with_certificate(&pem, x5c?),
                            None => x5c.map(|_| key),
                        }
                    });
                match key {
                    Ok(key) => Some(Some(key)),
                    Err(e) => {
                        problems.push(Problem::from_error(e));
                        None
                    }
                }
            }
        };
        let body = checked(
            &mut problems,
            settings::body_format(set(TOKEN_REQUEST).as_deref()),
        );
        let limits = checked(&mut problems, parse_limits(&set(MINT_BUDGET).unwrap_or_default()));
        let default_expires_in = match set(DEFAULT_EXPIRES_IN) {
            None => Some(None),
            Some(v) => {
                // whole seconds, or refused (a float parser would bring 10 KB of tables)
                let secs = v.trim().parse::<u64>().map_or(f64::NAN, |n| n as f64);
                checked(&mut problems, settings::default_expires_in(secs)).map(Some)
            }
        };
        let url = |problems: &mut Vec<Problem>, name: &'static str, core: &str, default: Option<&str>| {
            let value = raw(env, name).filter(|v| !v.is_empty());
            let Some(value) = value.or_else(|| default.map(str::to_owned)) else {
                return checked(problems, Err(settings::api_base_required()));
            };
            checked(problems, settings::url(core, normalize_url(&value)))
        };
        let token_url = url(
            &mut problems,
            TOKEN_URL,
            field::TOKEN_URL,
            Some(DEFAULT_TOKEN_URL),
        );
        // Autopay's API is the default only for Autopay's tokens (a wrong token URL is
        // reported above, and the API base's default then does not matter)
        let api_default = token_url
            .as_deref()
            .map_or(Some(DEFAULT_API_BASE_URL), settings::default_api_base);
        let api_base = url(&mut problems, API_BASE, field::API_BASE_URL, api_default);
        let audience = match raw(env, AUDIENCE).filter(|v| !v.is_empty()) {
            Some(v) if v == "none" => None,
            Some(v) => Some(v),
            None => Some(DEFAULT_AUDIENCE.into()),
        };
        // a key list, when set, must hold a usable key
        let key_list = |problems: &mut Vec<Problem>, setting: &'static str, text: Option<String>| {
            let parsed = CallerKeys::parse(&text?);
            if parsed.is_none() {
                problems.push(Problem {
                    setting,
                    problem: "has no usable key (comma-separated, each at least 16 characters)".into(),
                });
            }
            parsed
        };
        let caller_keys = key_list(&mut problems, PROXY_API_KEYS, keys);
        // optional, and none of the callers' keys (below)
        let health_keys = key_list(&mut problems, HEALTH_API_KEYS, set(HEALTH_API_KEYS));
        let operator_keys = key_list(&mut problems, OPERATOR_API_KEYS, set(OPERATOR_API_KEYS));
        if let Some(operator) = &operator_keys {
            let shared = [caller_keys.as_ref(), health_keys.as_ref()]
                .into_iter()
                .flatten()
                .any(|other| operator.digests().iter().any(|d| other.digests().contains(d)));
            if shared {
                problems.push(Problem {
                    setting: OPERATOR_API_KEYS,
                    problem: format!(
                        "shares a key with {PROXY_API_KEYS} or {HEALTH_API_KEYS}: the lever needs keys of its own"
                    ),
                });
            }
        }
        if let (Some(health), Some(callers)) = (&health_keys, &caller_keys)
            && health.digests().iter().any(|d| callers.digests().contains(d))
        {
            problems.push(Problem {
                setting: HEALTH_API_KEYS,
                problem: format!(
                    "shares a key with {PROXY_API_KEYS}: a health key must not also fetch tokens"
                ),
            });
        }
        for binding in [TOKENS_KV, TOKEN_MINTER] {
            if !present(env, binding) {
                problems.push(Problem {
                    setting: binding,
                    problem: "binding is missing (see wrangler.toml)".into(),
                });
            }
        }
        if let (
            Some(id),
            Some(token_url),
            Some(api_base),
            Some(caller_keys),
            Some(client_auth),
            Some(body),
            Some(default_expires_in),
            Some(private_key),
            Some(secret),
            Some(limits),
        ) = (
            client_id,
            token_url,
            api_base,
            caller_keys,
            client_auth,
            body,
            default_expires_in,
            private_key,
            secret,
            limits,
        ) {
            let mut config = Config::builder(&token_url, &id)
                .client_auth(client_auth)
                .body(body)
                .audience(audience.as_deref())
                .credentials(secret, private_key);
            if let Some(scope) = set(SCOPE) {
                config = config.scope(scope.trim());
            }
            for resource in set(RESOURCE).iter().flat_map(|r| r.split_whitespace()) {
                config = config.resource(resource);
            }
            if let Some(secs) = default_expires_in {
                config = config.default_expires_in(secs);
            }
            match config.build() {
                Ok(config) if problems.is_empty() => {
                    return Ok(Settings {
                        config,
                        policy: Policy {
                            limits,
                            ..Policy::default()
                        },
                        api_base,
                        caller_keys,
                        health_keys,
                        operator_keys,
                    });
                }
                Ok(_) => {}
                Err(e) => problems.push(Problem::from_error(e)),
            }
        }
        Err(problems)
    }
}
