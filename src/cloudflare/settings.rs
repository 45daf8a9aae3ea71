//! The Worker's configuration, read from `env`. The names are the interface (they match
//! `wrangler.toml` and the README); problems name the setting, never its value.

use js_sys::Reflect;
use serde::Serialize;
use wasm_bindgen::JsValue;
use worker::Env;

use super::caller::{CallerKeys, MIN_KEY_LEN};
use crate::js::normalize_url;
use crate::mtls::ClientCertificate;
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
/// Secret: the DPoP key (RFC 9449), a private JWK or PKCS#8 PEM: tokens bound to it, a proof on
/// every token request and proxied call.
pub const DPOP_KEY: &str = variable(field::DPOP_KEY);
/// Var: the DPoP key's JWS algorithm (else the key decides).
pub const DPOP_KEY_ALG: &str = variable(field::DPOP_KEY_ALG);
/// Binding: Cloudflare's mTLS certificate binding (`mtls_certificates` in `wrangler.toml`), for
/// `tls_client_auth` and `self_signed_tls_client_auth`: token requests and proxied calls go
/// through it, so the client certificate is presented on both (RFC 8705).
pub const MTLS: &str = "AUTOPAY_MTLS";
/// Secret (with [`MTLS`]): seals the stored tokens, since the certificate's key stays with
/// Cloudflare; at least 32 characters.
pub const SEAL_SECRET: &str = "AUTOPAY_SEAL_SECRET";
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
/// Var (optional): the tenants, as JSON — `{ "<tenant>": { "tokenUrl": …, "scope": …, … } }`,
/// each tenant's settings by their npm option names; its credentials are the secrets
/// `AUTOPAY_<TENANT>_CLIENT_ID`, `AUTOPAY_<TENANT>_CLIENT_SECRET` and `AUTOPAY_<TENANT>_PRIVATE_KEY`.
/// Set, the Worker serves many tenants under `/t/<tenant>/…`; unset, today's one configuration.
pub const TENANTS: &str = "AUTOPAY_TENANTS";
/// Secret (with [`TENANTS`]): the callers' keys, as JSON — `{ "<key>": { "<tenant>": ["/path", …] } }`:
/// the tenants each key may use and, for each, the API path prefixes it may call (`[]`: tokens
/// only; `["/"]`: every path).
pub const TENANT_API_KEYS: &str = "TENANT_API_KEYS";
/// KV namespace binding for the token record.
pub const TOKENS_KV: &str = "AUTOPAY_TOKENS";
/// Durable Object binding: the one minting authority.
pub const TOKEN_MINTER: &str = "TOKEN_MINTER";

/// One thing wrong with the configuration.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// The setting's name (`AUTOPAY_TENANTS.acme.scope` for a tenant's).
    pub setting: String,
    /// What is wrong (never the value).
    pub problem: String,
}

impl Problem {
    fn new(setting: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            setting: setting.into(),
            problem: problem.into(),
        }
    }
}

/// One credential set the Worker serves tokens for, validated.
pub struct Tenant {
    /// `None`: the one tenant of the single-tenant settings.
    pub name: Option<String>,
    pub config: Config,
    /// The lifecycle policy: the settings' (refresh point, margins, timeout) with the mint
    /// budget's limits.
    pub policy: Policy,
    pub api_base: String,
    /// The mTLS certificate binding its token requests and proxied calls go through, if any.
    pub mtls: Option<String>,
}

/// Who may call, and for what.
pub enum Access {
    /// The single-tenant settings: every key of `PROXY_API_KEYS` reaches the one tenant and
    /// every path.
    Single(CallerKeys),
    /// `TENANT_API_KEYS`: for each key (in [`CallerKeys`] order), the tenants it may use (their
    /// index) and, for each, the path prefixes it may call.
    Tenants(CallerKeys, Vec<Vec<(usize, Vec<String>)>>),
}

/// The configuration, validated.
pub struct Settings {
    pub tenants: Vec<Tenant>,
    pub access: Access,
    /// Keys for the detailed `/healthz` only (none when not set).
    pub health_keys: Option<CallerKeys>,
    /// Keys for the operator's lever only (none when not set: the lever is off).
    pub operator_keys: Option<CallerKeys>,
}

impl Access {
    /// Every caller key.
    pub fn keys(&self) -> &CallerKeys {
        match self {
            Access::Single(keys) | Access::Tenants(keys, _) => keys,
        }
    }

    /// Whether caller key `key` may use tenant `tenant` — and, with `path` (an API path under the
    /// tenant's base), call that path: a prefix matches whole segments (`/v1/orders` allows
    /// `/v1/orders` and `/v1/orders/7`, never `/v1/ordersX`).
    pub fn permits(&self, key: usize, tenant: usize, path: Option<&str>) -> bool {
        let Access::Tenants(_, grants) = self else {
            return tenant == 0;
        };
        let Some((_, prefixes)) = grants.get(key).and_then(|g| g.iter().find(|(t, _)| *t == tenant)) else {
            return false;
        };
        let Some(path) = path else {
            return true;
        };
        let path = path.split(['?', '#']).next().unwrap_or_default();
        prefixes.iter().any(|p| {
            let p = p.trim_end_matches('/');
            p.is_empty() || path == p || path.strip_prefix(p).is_some_and(|rest| rest.starts_with('/'))
        })
    }
}

fn raw(env: &Env, name: &str) -> Option<String> {
    Reflect::get(env, &JsValue::from_str(name)).ok()?.as_string()
}

fn present(env: &Env, name: &str) -> bool {
    Reflect::get(env, &JsValue::from_str(name)).is_ok_and(|v| !v.is_undefined() && !v.is_null())
}

/// The Worker's own names besides the settings' variables ([`settings::SETTINGS`]).
const KEYS_AND_TENANTS: [&str; 6] = [
    SEAL_SECRET,
    PROXY_API_KEYS,
    HEALTH_API_KEYS,
    OPERATOR_API_KEYS,
    TENANTS,
    TENANT_API_KEYS,
];

/// The `fetch` a tenant's token requests and proxied calls go through: its mTLS certificate
/// binding's (which presents the client certificate), else the platform's.
pub fn fetch_of(env: &Env, tenant: &Tenant) -> worker::Result<js_sys::Function> {
    use wasm_bindgen::JsCast;
    let (this, owner): (JsValue, JsValue) = match &tenant.mtls {
        Some(binding) => {
            let b = Reflect::get(env, &JsValue::from_str(binding))?;
            (b.clone(), b)
        }
        None => (js_sys::global().into(), js_sys::global().into()),
    };
    let fetch: js_sys::Function = Reflect::get(&owner, &"fetch".into())?.dyn_into()?;
    Ok(fetch.bind0(&this))
}

/// The raw values that decide the settings, so an isolate can reuse what it built from them.
pub type Fingerprint = Vec<Option<String>>;

/// The fingerprint of `env`, with the secrets of the tenants `names` (those the settings last
/// built from it declared: a change of [`TENANTS`] changes the fingerprint by itself).
pub fn fingerprint(env: &Env, names: &[&str]) -> Fingerprint {
    let mut out: Fingerprint = settings::SETTINGS
        .iter()
        .filter_map(|s| s.variable)
        .chain(KEYS_AND_TENANTS)
        .map(|n| raw(env, n))
        .collect();
    for name in names {
        out.extend(TENANT_SECRETS.iter().map(|s| raw(env, &tenant_secret(name, s))));
    }
    out
}

/// The secrets each tenant has, by their single-tenant names.
const TENANT_SECRETS: [&str; 5] = [CLIENT_ID, CLIENT_SECRET, PRIVATE_KEY, DPOP_KEY, SEAL_SECRET];

/// `AUTOPAY_<TENANT>_CLIENT_ID` for `AUTOPAY_CLIENT_ID` of tenant `name`.
pub fn tenant_secret(name: &str, variable: &str) -> String {
    let rest = variable.strip_prefix("AUTOPAY_").unwrap_or(variable);
    format!("AUTOPAY_{}_{rest}", name.to_ascii_uppercase())
}

/// A tenant's name: 1 to 32 of `a-z0-9_`, starting with a letter or digit — safe in a path,
/// a secret's name and a log line.
fn is_tenant_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && !name.starts_with('_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Where one tenant's settings come from: the Worker's variables (the single tenant), or a
/// tenant's JSON object and its secrets.
enum Source<'a> {
    Env(&'a Env),
    Tenant {
        env: &'a Env,
        name: &'a str,
        object: &'a serde_json::Map<String, serde_json::Value>,
    },
}

impl Source<'_> {
    /// The name of the binding whose single-tenant name is `binding`, if the Worker has it
    /// (`AUTOPAY_<TENANT>_MTLS` for a tenant's).
    fn binding(&self, binding: &str) -> Option<String> {
        let (env, name) = match self {
            Source::Env(env) => (*env, binding.to_owned()),
            Source::Tenant { env, name, .. } => (*env, tenant_secret(name, binding)),
        };
        present(env, &name).then_some(name)
    }

    /// The raw value of the setting whose single-tenant variable is `variable`.
    fn get(&self, variable: &str) -> Option<String> {
        match self {
            Source::Env(env) => raw(env, variable),
            Source::Tenant { env, name, object } => {
                if TENANT_SECRETS.contains(&variable) {
                    return raw(env, &tenant_secret(name, variable));
                }
                let option = settings::SETTINGS
                    .iter()
                    .find(|s| s.variable == Some(variable))?
                    .option;
                json_text(object.get(option)?)
            }
        }
    }

    /// The number a policy setting holds (`None` unset, `NaN` not a number): a tenant's JSON
    /// number, or a variable's text read by the platform's `Number` (strict: `"0.7x"` is NaN,
    /// and no float parser comes into the wasm).
    fn number(&self, variable: &str) -> Option<f64> {
        match self {
            Source::Env(env) => {
                let text = raw(env, variable).filter(|v| !v.trim().is_empty())?;
                // `new Number(text)`: the conversion by `Number(…)`, strict (js-sys deprecates the
                // constructor for numbers made from Rust numbers, which this is not)
                #[allow(deprecated)]
                let n = js_sys::Number::new(&JsValue::from_str(text.trim()));
                Some(n.value_of())
            }
            Source::Tenant { object, .. } => {
                let option = settings::SETTINGS
                    .iter()
                    .find(|s| s.variable == Some(variable))?
                    .option;
                object.get(option).map(|v| v.as_f64().unwrap_or(f64::NAN))
            }
        }
    }

    /// The name a problem with `variable` is reported under.
    fn name(&self, variable: &'static str) -> String {
        match self {
            Source::Env(_) => variable.to_owned(),
            Source::Tenant { name, .. } if TENANT_SECRETS.contains(&variable) => {
                tenant_secret(name, variable)
            }
            Source::Tenant { name, .. } => {
                let option = settings::SETTINGS
                    .iter()
                    .find(|s| s.variable == Some(variable))
                    .map_or(variable, |s| s.option);
                format!("{TENANTS}.{name}.{option}")
            }
        }
    }
}

/// A JSON value as the text a variable would hold: strings as they are, numbers and booleans
/// written out, an array of strings joined by spaces (`resource`).
fn json_text(v: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => n
            .as_u64()
            .map(|n| n.to_string())
            .or_else(|| Some("invalid".into())),
        Value::Array(items) => Some(
            items
                .iter()
                .map(|i| i.as_str().unwrap_or("\u{0}invalid"))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => Some("\u{0}invalid".into()),
    }
}

/// The options a tenant's JSON object may hold: every setting with a Worker variable that is not
/// a secret, and the token request's further parameters and headers.
fn tenant_option_allowed(option: &str) -> bool {
    option == "tokenParams"
        || option == "tokenHeaders"
        || settings::SETTINGS
            .iter()
            .any(|s| s.option == option && s.variable.is_some_and(|v| !TENANT_SECRETS.contains(&v)))
}

/// A key list, when set, must hold a usable key.
fn key_list(problems: &mut Vec<Problem>, setting: &'static str, text: Option<String>) -> Option<CallerKeys> {
    let parsed = CallerKeys::parse(&text?);
    if parsed.is_none() {
        problems.push(Problem::new(
            setting,
            format!("has no usable key (comma-separated, each at least {MIN_KEY_LEN} characters)"),
        ));
    }
    parsed
}

impl Settings {
    /// Reads and checks everything; every problem is reported, not just the first.
    pub fn read(env: &Env) -> Result<Settings, Vec<Problem>> {
        let mut problems = Vec::new();
        let set = |name: &str| raw(env, name).filter(|v| !v.trim().is_empty());
        let (tenants, access) = match set(TENANTS) {
            None => {
                let keys = match set(PROXY_API_KEYS) {
                    Some(k) => key_list(&mut problems, PROXY_API_KEYS, Some(k)),
                    None => {
                        problems.push(Problem::new(PROXY_API_KEYS, "is missing or empty"));
                        None
                    }
                };
                let tenant = read_tenant(&Source::Env(env), None, &mut problems);
                (tenant.into_iter().collect(), keys.map(Access::Single))
            }
            Some(text) => read_tenants(env, &text, &mut problems),
        };
        // optional, and none of the callers' keys
        let health_keys = key_list(&mut problems, HEALTH_API_KEYS, set(HEALTH_API_KEYS));
        let operator_keys = key_list(&mut problems, OPERATOR_API_KEYS, set(OPERATOR_API_KEYS));
        let callers = access.as_ref().map(Access::keys);
        let shares = |a: &CallerKeys, b: &CallerKeys| a.digests().iter().any(|d| b.digests().contains(d));
        if let Some(operator) = &operator_keys
            && [callers, health_keys.as_ref()]
                .into_iter()
                .flatten()
                .any(|other| shares(operator, other))
        {
            problems.push(Problem::new(
                OPERATOR_API_KEYS,
                "shares a key with the callers' or the monitors' keys: the lever needs keys of its own",
            ));
        }
        if let (Some(health), Some(callers)) = (&health_keys, callers)
            && shares(health, callers)
        {
            problems.push(Problem::new(
                HEALTH_API_KEYS,
                "shares a key with the callers' keys: a health key must not also fetch tokens",
            ));
        }
        for binding in [TOKENS_KV, TOKEN_MINTER] {
            if !present(env, binding) {
                problems.push(Problem::new(binding, "binding is missing (see wrangler.toml)"));
            }
        }
        match access {
            Some(access) if problems.is_empty() => Ok(Settings {
                tenants,
                access,
                health_keys,
                operator_keys,
            }),
            _ => Err(problems),
        }
    }

    /// The one tenant the minter named `tenant` serves (`None`: the single-tenant settings).
    pub fn read_tenant(env: &Env, tenant: Option<&str>) -> Result<Tenant, Vec<Problem>> {
        let mut problems = Vec::new();
        let found = match tenant {
            None => read_tenant(&Source::Env(env), None, &mut problems),
            Some(name) => {
                let object = raw(env, TENANTS)
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                    .and_then(|v| v.get(name)?.as_object().cloned());
                match object {
                    Some(object) => read_tenant(
                        &Source::Tenant {
                            env,
                            name,
                            object: &object,
                        },
                        Some(name),
                        &mut problems,
                    ),
                    None => {
                        problems.push(Problem::new(TENANTS, "does not declare this tenant"));
                        None
                    }
                }
            }
        };
        match found {
            Some(t) if problems.is_empty() => Ok(t),
            _ => Err(problems),
        }
    }

    /// The tenant named `name` (`None`: the single tenant), by index.
    pub fn tenant_index(&self, name: Option<&str>) -> Option<usize> {
        self.tenants.iter().position(|t| t.name.as_deref() == name)
    }
}

/// [`TENANTS`] and [`TENANT_API_KEYS`]: every tenant, and who may use which.
fn read_tenants(env: &Env, text: &str, problems: &mut Vec<Problem>) -> (Vec<Tenant>, Option<Access>) {
    let mut tenants = Vec::new();
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(all)) if !all.is_empty() => {
            for (name, object) in &all {
                if !is_tenant_name(name) {
                    problems.push(Problem::new(
                        TENANTS,
                        "has a tenant name that is not 1 to 32 of a-z, 0-9 and _",
                    ));
                    continue;
                }
                let Some(object) = object.as_object() else {
                    problems.push(Problem::new(format!("{TENANTS}.{name}"), "must be an object"));
                    continue;
                };
                for option in object.keys() {
                    if !tenant_option_allowed(option) {
                        let why = if ["clientId", "clientSecret", "privateKey", "dpopKey"]
                            .contains(&option.as_str())
                        {
                            "is a secret: set it as the tenant's secret (AUTOPAY_<TENANT>_CLIENT_ID, …_CLIENT_SECRET, …_PRIVATE_KEY, …_DPOP_KEY)"
                        } else {
                            "is not a tenant setting"
                        };
                        problems.push(Problem::new(format!("{TENANTS}.{name}.{option}"), why));
                    }
                }
                let source = Source::Tenant { env, name, object };
                if let Some(t) = read_tenant(&source, Some(name), problems) {
                    tenants.push(t);
                }
            }
        }
        _ => problems.push(Problem::new(
            TENANTS,
            "must be a JSON object of tenants: { \"<tenant>\": { \"tokenUrl\": …, … } }",
        )),
    }
    let access = read_grants(env, &tenants, problems);
    for single in [
        CLIENT_ID,
        CLIENT_SECRET,
        PROXY_API_KEYS,
        PRIVATE_KEY,
        DPOP_KEY,
        SEAL_SECRET,
    ] {
        if raw(env, single).is_some_and(|v| !v.trim().is_empty()) {
            problems.push(Problem::new(
                single,
                format!("is a single-tenant setting: with {TENANTS} set, each tenant has its own"),
            ));
        }
    }
    (tenants, access)
}

/// [`TENANT_API_KEYS`]: `{ "<key>": { "<tenant>": ["/path", …] } }`.
fn read_grants(env: &Env, tenants: &[Tenant], problems: &mut Vec<Problem>) -> Option<Access> {
    let bad = |problems: &mut Vec<Problem>, why: &str| {
        problems.push(Problem::new(TENANT_API_KEYS, why));
        None
    };
    let Some(text) = raw(env, TENANT_API_KEYS).filter(|t| !t.trim().is_empty()) else {
        return bad(problems, "is missing or empty");
    };
    let Ok(serde_json::Value::Object(keys)) = serde_json::from_str::<serde_json::Value>(&text) else {
        return bad(
            problems,
            "must be a JSON object: { \"<key>\": { \"<tenant>\": [\"/path\", …] } }",
        );
    };
    let mut list = Vec::new();
    let mut grants = Vec::new();
    for (key, allowed) in &keys {
        if key.trim().len() < MIN_KEY_LEN || key.contains(',') {
            return bad(
                problems,
                &format!("has a key shorter than {MIN_KEY_LEN} characters, or with a comma"),
            );
        }
        let Some(allowed) = allowed.as_object() else {
            return bad(
                problems,
                "must map each key to an object of tenants and their paths",
            );
        };
        let mut grant = Vec::new();
        for (tenant, paths) in allowed {
            let Some(index) = tenants.iter().position(|t| t.name.as_deref() == Some(tenant)) else {
                return bad(problems, "grants a tenant that AUTOPAY_TENANTS does not declare");
            };
            let paths: Option<Vec<String>> = paths.as_array().and_then(|ps| {
                ps.iter()
                    .map(|p| {
                        p.as_str()
                            .filter(|p| {
                                p.starts_with('/')
                                    && !crate::api::smuggles_separator(p)
                                    && !p.contains(['?', '#', '\\'])
                            })
                            .map(str::to_owned)
                    })
                    .collect()
            });
            let Some(paths) = paths else {
                return bad(
                    problems,
                    "must give each tenant a list of paths starting with `/`",
                );
            };
            grant.push((index, paths));
        }
        list.push(key.trim().to_owned());
        grants.push(grant);
    }
    let Some(digests) = CallerKeys::parse(&list.join(",")) else {
        return bad(problems, "has no usable key");
    };
    Some(Access::Tenants(digests, grants))
}

/// A value checked by the settings' rules; a refusal is kept, named as `source` names it.
fn checked<T>(source: &Source, problems: &mut Vec<Problem>, r: Result<T, crate::Error>) -> Option<T> {
    r.map_err(|e| problems.push(problem_from_error(source, e))).ok()
}

/// The problem an `invalid_config` error describes, named by its setting.
fn problem_from_error(source: &Source, e: crate::Error) -> Problem {
    let variable = e.field().and_then(settings::variable_name).unwrap_or(API_BASE);
    let setting = match (source, e.field()) {
        (Source::Tenant { name, .. }, Some(f @ (field::TOKEN_PARAMS | field::TOKEN_HEADERS))) => {
            format!("{TENANTS}.{name}.{}", settings::option_name(f).unwrap_or(f))
        }
        _ => source.name(variable),
    };
    let problem = match e {
        crate::Error::InvalidConfig { reason, .. } => reason,
        other => other.to_string(),
    };
    Problem { setting, problem }
}

/// One tenant's configuration from `source`; `None` when something is wrong (in `problems`).
fn read_tenant(source: &Source, name: Option<&str>, problems: &mut Vec<Problem>) -> Option<Tenant> {
    let before = problems.len();
    let set = |variable: &str| source.get(variable).filter(|v| !v.trim().is_empty());
    let required = |problems: &mut Vec<Problem>, variable: &'static str| match set(variable) {
        Some(v) => Some(v),
        None => {
            problems.push(Problem::new(source.name(variable), "is missing or empty"));
            None
        }
    };
    let client_id = required(problems, CLIENT_ID);
    let mtls = source.binding(MTLS);
    let client_auth = checked(
        source,
        problems,
        settings::client_auth_with(set(CLIENT_AUTH).as_deref(), mtls.is_some()),
    );
    // the secret is required unless the client signs with a key or its certificate (then the
    // builder refuses one)
    let secret = match (client_auth, set(CLIENT_SECRET)) {
        (Some(ClientAuth::PrivateKeyJwt), s) => Some(s.map(ClientSecret::new)),
        (Some(auth), s) if auth.is_mutual_tls() => Some(s.map(ClientSecret::new)),
        _ => required(problems, CLIENT_SECRET).map(|s| Some(ClientSecret::new(s))),
    };
    // the certificate, when the client authenticates with it: held by the binding
    let certificate = match (client_auth, &mtls) {
        (Some(auth), Some(binding)) if auth.is_mutual_tls() => {
            let seal = required(problems, SEAL_SECRET).map(ClientSecret::new);
            seal.and_then(|seal| {
                let c = ClientCertificate::on_platform(binding, seal).map_err(|_| {
                    crate::Error::config(
                        field::CLIENT_CERTIFICATE_KEY,
                        "must be a secret of at least 32 characters",
                    )
                });
                checked(source, problems, c)
            })
        }
        (Some(_), Some(_)) => {
            problems.push(Problem::new(
                source.name(MTLS),
                "is only used with clientAuth tls_client_auth or self_signed_tls_client_auth",
            ));
            None
        }
        _ => None,
    };
    let dpop_key = match set(DPOP_KEY) {
        None => Some(None),
        Some(text) => checked(
            source,
            problems,
            crate::dpop::check_key(&text, set(DPOP_KEY_ALG).as_deref()),
        )
        .map(Some),
    };
    let private_key = match set(PRIVATE_KEY) {
        None => Some(None),
        Some(text) => {
            let (alg, kid) = (set(PRIVATE_KEY_ALG), set(PRIVATE_KEY_ID));
            let x5c = match set(X5C).as_deref().map(str::trim) {
                None | Some("false") => Ok(false),
                Some("true") => Ok(true),
                Some(_) => Err(crate::Error::config(field::X5C, "must be true or false")),
            };
            let key = PrivateKey::parse(&text, alg.as_deref(), kid.as_deref()).and_then(|key| {
                match set(CERTIFICATE) {
                    Some(pem) => key.with_certificate(&pem, x5c?),
                    None => x5c.map(|_| key),
                }
            });
            checked(source, problems, key).map(Some)
        }
    };
    let body = checked(
        source,
        problems,
        settings::body_format(set(TOKEN_REQUEST).as_deref()),
    );
    let limits = checked(
        source,
        problems,
        parse_limits(&set(MINT_BUDGET).unwrap_or_default()),
    );
    // the lifecycle policy, by the one table of names and ranges both edges use
    let number = |core: &'static str| settings::variable_name(core).and_then(|v| source.number(v));
    let policy = limits.and_then(|limits| checked(source, problems, settings::policy(&number, None, limits)));
    let default_expires_in = match set(DEFAULT_EXPIRES_IN) {
        None => Some(None),
        Some(v) => {
            // whole seconds, or refused (a float parser would bring 10 KB of tables)
            let secs = v.trim().parse::<u64>().map_or(f64::NAN, |n| n as f64);
            checked(source, problems, settings::default_expires_in(secs)).map(Some)
        }
    };
    let url = |problems: &mut Vec<Problem>, variable: &'static str, core: &str, default: Option<&str>| {
        let value = source.get(variable).filter(|v| !v.is_empty());
        let Some(value) = value.or_else(|| default.map(str::to_owned)) else {
            return checked(source, problems, Err(settings::api_base_required()));
        };
        checked(source, problems, settings::url(core, normalize_url(&value)))
    };
    let token_url = url(problems, TOKEN_URL, field::TOKEN_URL, Some(DEFAULT_TOKEN_URL));
    // Autopay's API is the default only for Autopay's tokens
    let api_default = token_url
        .as_deref()
        .map_or(Some(DEFAULT_API_BASE_URL), settings::default_api_base);
    let api_base = url(problems, API_BASE, field::API_BASE_URL, api_default);
    let audience = match source.get(AUDIENCE).filter(|v| !v.is_empty()) {
        Some(v) if v == "none" => None,
        Some(v) => Some(v),
        None => Some(DEFAULT_AUDIENCE.into()),
    };
    let (id, token_url, api_base, client_auth, body, default_expires_in, private_key, secret, policy) = (
        client_id?,
        token_url?,
        api_base?,
        client_auth?,
        body?,
        default_expires_in?,
        private_key?,
        secret?,
        policy?,
    );
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
    if let Some(key) = dpop_key? {
        config = config.dpop_key(key);
    }
    if let Some(certificate) = certificate {
        config = config.client_certificate(certificate);
    }
    if let Source::Tenant { object, .. } = source {
        config = config.label(name.unwrap_or_default());
        for (option, core) in [
            ("tokenParams", field::TOKEN_PARAMS),
            ("tokenHeaders", field::TOKEN_HEADERS),
        ] {
            let Some(v) = object.get(option) else { continue };
            let Some(pairs) = v.as_object() else {
                problems.push(problem_from_error(
                    source,
                    crate::Error::config(core, "must be an object of strings"),
                ));
                continue;
            };
            for (k, v) in pairs {
                let v = v.as_str().unwrap_or("\u{0}");
                config = if option == "tokenParams" {
                    config.param(k, v)
                } else {
                    config.header(k, v)
                };
            }
        }
    }
    match config.build() {
        Ok(config) if problems.len() == before => Some(Tenant {
            name: name.map(str::to_owned),
            config,
            policy,
            api_base,
            mtls: mtls.filter(|_| client_auth.is_mutual_tls()),
        }),
        Ok(_) => None,
        Err(e) => {
            problems.push(problem_from_error(source, e));
            None
        }
    }
}
