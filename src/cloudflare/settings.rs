//! The Worker's configuration, read from `env`. The names are the interface (they match
//! `wrangler.toml` and the README); problems name the setting, never its value.

use js_sys::Reflect;
use serde::Serialize;
use wasm_bindgen::JsValue;
use worker::Env;

use super::caller::CallerKeys;
use crate::js::normalize_url;
use crate::{
    ClientSecret, Config, DEFAULT_API_BASE_URL, DEFAULT_AUDIENCE, DEFAULT_TOKEN_URL, check_url, field,
};

/// Secret: the Autopay Client ID.
pub const CLIENT_ID: &str = "AUTOPAY_CLIENT_ID";
/// Secret: the Autopay Client Secret.
pub const CLIENT_SECRET: &str = "AUTOPAY_CLIENT_SECRET";
/// Secret: comma-separated keys callers must present as `Authorization: Bearer <key>`.
pub const PROXY_API_KEYS: &str = "PROXY_API_KEYS";
/// Secret (optional): comma-separated keys that may read `/healthz` in detail and nothing else —
/// for monitoring, which should not hold a key that also fetches tokens and proxies.
pub const HEALTH_API_KEYS: &str = "HEALTH_API_KEYS";
/// Var: the token endpoint.
pub const TOKEN_URL: &str = "AUTOPAY_TOKEN_URL";
/// Var: the audience.
pub const AUDIENCE: &str = "AUTOPAY_AUDIENCE";
/// Var: where proxied calls go.
pub const API_BASE: &str = "AUTOPAY_API_BASE";
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
    pub api_base: String,
    pub caller_keys: CallerKeys,
    /// Keys for the detailed `/healthz` only (empty when not set).
    pub health_keys: Option<CallerKeys>,
}

fn raw(env: &Env, name: &str) -> Option<String> {
    Reflect::get(env, &JsValue::from_str(name)).ok()?.as_string()
}

fn present(env: &Env, name: &str) -> bool {
    Reflect::get(env, &JsValue::from_str(name)).is_ok_and(|v| !v.is_undefined() && !v.is_null())
}

/// The raw values that decide the settings, so an isolate can reuse what it built from them.
pub fn fingerprint(env: &Env) -> [Option<String>; 7] {
    [
        CLIENT_ID,
        CLIENT_SECRET,
        PROXY_API_KEYS,
        HEALTH_API_KEYS,
        TOKEN_URL,
        AUDIENCE,
        API_BASE,
    ]
    .map(|n| raw(env, n))
}

/// The Worker setting that sets a core [`field`].
pub fn setting_name(core: &str) -> Option<&'static str> {
    Some(match core {
        field::CLIENT_ID => CLIENT_ID,
        field::CLIENT_SECRET => CLIENT_SECRET,
        field::TOKEN_URL => TOKEN_URL,
        field::AUDIENCE => AUDIENCE,
        field::API_BASE_URL => API_BASE,
        _ => return None,
    })
}

impl Problem {
    /// The problem an `invalid_config` error describes, named by its Worker setting.
    fn from_error(e: crate::Error) -> Self {
        let setting = e.field().and_then(setting_name).unwrap_or(API_BASE);
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
        let mut required = |name: &'static str| match raw(env, name) {
            Some(v) if !v.trim().is_empty() => Some(v),
            _ => {
                problems.push(Problem {
                    setting: name,
                    problem: "is missing or empty".into(),
                });
                None
            }
        };
        let client_id = required(CLIENT_ID);
        let secret = required(CLIENT_SECRET).map(ClientSecret::new);
        let keys = required(PROXY_API_KEYS);
        let mut url = |name: &'static str, core: &str, default: &str| {
            let value = raw(env, name)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned());
            match normalize_url(&value).map(|href| check_url(core, &href).map(|_| href)) {
                Some(Ok(href)) => Some(href),
                Some(Err(e)) => {
                    problems.push(Problem::from_error(e));
                    None
                }
                None => {
                    problems.push(Problem {
                        setting: name,
                        problem: "must be an absolute URL".into(),
                    });
                    None
                }
            }
        };
        let token_url = url(TOKEN_URL, field::TOKEN_URL, DEFAULT_TOKEN_URL);
        let api_base = url(API_BASE, field::API_BASE_URL, DEFAULT_API_BASE_URL);
        let audience = raw(env, AUDIENCE)
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_AUDIENCE.into());
        let caller_keys = keys.and_then(|k| match CallerKeys::parse(&k) {
            Some(keys) => Some(keys),
            None => {
                problems.push(Problem {
                    setting: PROXY_API_KEYS,
                    problem: "has no usable key (comma-separated, each at least 16 characters)".into(),
                });
                None
            }
        });
        // optional; when set it must hold a usable key, and none of the callers' keys
        let health_keys = raw(env, HEALTH_API_KEYS)
            .filter(|v| !v.trim().is_empty())
            .and_then(|k| {
                let parsed = CallerKeys::parse(&k);
                if parsed.is_none() {
                    problems.push(Problem {
                        setting: HEALTH_API_KEYS,
                        problem: "has no usable key (comma-separated, each at least 16 characters)".into(),
                    });
                }
                parsed
            });
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
        if let (Some(id), Some(secret), Some(token_url), Some(api_base), Some(caller_keys)) =
            (client_id, secret, token_url, api_base, caller_keys)
        {
            if api_base.contains('?') {
                problems.push(Problem {
                    setting: API_BASE,
                    problem: "must not have a query".into(),
                });
            }
            match Config::new(&token_url, &id, secret, &audience) {
                Ok(config) if problems.is_empty() => {
                    return Ok(Settings {
                        config,
                        api_base,
                        caller_keys,
                        health_keys,
                    });
                }
                Ok(_) => {}
                Err(e) => problems.push(Problem::from_error(e)),
            }
        }
        Err(problems)
    }
}
