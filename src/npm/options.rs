//! Reading the JS options object: every option checked, every refusal an `invalid_config`
//! naming the option (never its value).

use js_sys::{Function, Reflect};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

use crate::js::kv::{JsKv, KvStore};
use crate::js::normalize_url;
use crate::npm::observe::Logger;
use crate::settings;
use crate::{
    ClientSecret, Config, DEFAULT_AUDIENCE, DEFAULT_TOKEN_URL, Error, Limit, Policy, PrivateKey, Window,
    field, parse_limits,
};

const KNOWN: &[&str] = &[
    "clientId",
    "clientSecret",
    "clientAuth",
    "privateKey",
    "privateKeyAlg",
    "privateKeyId",
    "certificate",
    "x5c",
    "dpopKey",
    "dpopKeyAlg",
    "tokenRequest",
    "scope",
    "resource",
    "label",
    "tokenParams",
    "tokenHeaders",
    "defaultExpiresInSec",
    "kv",
    "tokenUrl",
    "audience",
    "apiBaseUrl",
    "fetch",
    "refreshRatio",
    "expiryMarginSec",
    "expiryMarginRatio",
    "refreshJitterSec",
    "timeoutMs",
    "storeTimeoutMs",
    "storeOutage",
    "storeWaitMs",
    "mintBudget",
    "logger",
    "loggerArgs",
    "telemetry",
    "onEvent",
    "waitUntil",
    "dangerouslyAllowBrowser",
];

/// A web page (a `window` with a `document`) or a browser worker (`importScripts`): places where
/// anyone who opens the page can read a client secret. Node, Deno, Bun and Workers are not.
fn in_browser() -> bool {
    let global = js_sys::global();
    let lookup = |name: &str| Reflect::get(&global, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED);
    let page = !absent(&lookup("window")) && !absent(&lookup("document"));
    page || lookup("importScripts").is_function()
}

/// The options, validated.
pub(crate) struct Options {
    pub(crate) config: Config,
    pub(crate) policy: Policy,
    /// `None`: unset, and the token endpoint is not Autopay's (`auth.fetch` refuses).
    pub(crate) api_base_url: Option<String>,
    pub(crate) fetch: Function,
    pub(crate) kv: Option<KvStore>,
    /// Where log lines go (`console` unless given; `None` when the user passed `null`).
    pub(crate) logger: Option<Logger>,
    /// `{ meter, tracer }` of OpenTelemetry, as given (checked by the telemetry edge).
    pub(crate) telemetry: JsValue,
    /// Called with every event, when given.
    pub(crate) on_event: Option<Function>,
    /// Given each background refresh's promise, when given (the platform's `waitUntil`).
    pub(crate) wait_until: Option<Function>,
}

/// An optional function: absent (`undefined` or `null`) is `None`; anything else but a function
/// is an error naming `name`.
pub(crate) fn optional_function(value: JsValue, name: &str) -> Result<Option<Function>, Error> {
    if absent(&value) {
        return Ok(None);
    }
    value
        .dyn_into::<Function>()
        .map(Some)
        .map_err(|_| Error::config(name, "must be a function"))
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = Object, js_name = hasOwn, catch)]
    fn has_own(obj: &JsValue, key: &str) -> Result<bool, JsValue>;
    #[wasm_bindgen(js_namespace = Object, js_name = keys, catch)]
    fn own_keys(obj: &JsValue) -> Result<js_sys::Array, JsValue>;
}

/// An option: the object's *own* property only, so a polluted `Object.prototype` can never
/// supply the secret, the token URL, the fetch or the store. [`Options::read`] reads every
/// option once, through [`own`], into the snapshot this is then called on.
fn get(obj: &JsValue, key: &str) -> JsValue {
    match has_own(obj, key) {
        Ok(true) => Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED),
        _ => JsValue::UNDEFINED,
    }
}

/// Reads `key` of the user's options, naming it when its getter throws.
fn own(obj: &JsValue, key: &str) -> Result<JsValue, Error> {
    match has_own(obj, key) {
        Ok(true) => Reflect::get(obj, &JsValue::from_str(key))
            .map_err(|_| Error::config(key, "could not be read (its getter threw)")),
        Ok(false) => Ok(JsValue::UNDEFINED),
        Err(_) => Err(Error::config("options", "could not be read")),
    }
}

fn absent(v: &JsValue) -> bool {
    v.is_undefined() || v.is_null()
}

fn string(obj: &JsValue, key: &str, default: Option<&str>) -> Result<String, Error> {
    let v = get(obj, key);
    match (v.as_string(), default) {
        (Some(s), _) => Ok(s),
        (None, Some(d)) if absent(&v) => Ok(d.to_owned()),
        (None, None) if absent(&v) => Err(Error::config(key, "is required")),
        _ => Err(Error::config(key, "must be a string")),
    }
}

/// A string option that may be absent (`undefined` or `null`).
fn optional_string(obj: &JsValue, key: &str) -> Result<Option<String>, Error> {
    let v = get(obj, key);
    if absent(&v) {
        return Ok(None);
    }
    v.as_string()
        .map(Some)
        .ok_or_else(|| Error::config(key, "must be a string"))
}

/// `privateKey`: a private JWK (an object, or its JSON text) or a PKCS#8 PEM string, with
/// `privateKeyAlg` and `privateKeyId`. Absent is `None`.
fn private_key(obj: &JsValue) -> Result<Option<PrivateKey>, Error> {
    let alg = optional_string(obj, "privateKeyAlg")?;
    let kid = optional_string(obj, "privateKeyId")?;
    let Some(text) = key_text(obj, "privateKey")? else {
        let given = [
            ("privateKeyAlg", alg.is_some()),
            ("privateKeyId", kid.is_some()),
            ("certificate", !absent(&get(obj, "certificate"))),
        ];
        if let Some((given, _)) = given.into_iter().find(|(_, set)| *set) {
            return Err(Error::config(given, "is only used with privateKey"));
        }
        return Ok(None);
    };
    let key = PrivateKey::parse(&text, alg.as_deref(), kid.as_deref())?;
    match optional_string(obj, "certificate")? {
        Some(pem) => {
            let x5c = get(obj, "x5c");
            if !(absent(&x5c) || x5c.as_bool().is_some()) {
                return Err(Error::config("x5c", "must be a boolean"));
            }
            key.with_certificate(&pem, x5c.as_bool() == Some(true)).map(Some)
        }
        None if !absent(&get(obj, "x5c")) => Err(Error::config("x5c", "is only used with certificate")),
        None => Ok(Some(key)),
    }
}

/// A key option: a private JWK (an object, or its JSON text) or a PKCS#8 PEM string, as text.
/// Absent is `None`.
fn key_text(obj: &JsValue, option: &str) -> Result<Option<String>, Error> {
    let key = get(obj, option);
    let refused = || Error::config(option, "must be a private JWK or a PKCS#8 PEM string");
    if absent(&key) {
        Ok(None)
    } else if let Some(text) = key.as_string() {
        Ok(Some(text))
    } else if key.is_object() && !js_sys::Array::is_array(&key) {
        // a JWK object, or a CryptoKey / KeyObject (refused: the key must be one we can import)
        js_sys::JSON::stringify(&key)
            .ok()
            .and_then(|t| t.as_string())
            .filter(|t| t.starts_with("{\"") || t == "{}")
            .map(Some)
            .ok_or_else(refused)
    } else {
        Err(refused())
    }
}

/// `dpopKey` (a private JWK or PKCS#8 PEM, as `privateKey` is given) with `dpopKeyAlg`.
fn dpop_key(obj: &JsValue) -> Result<Option<PrivateKey>, Error> {
    let alg = optional_string(obj, "dpopKeyAlg")?;
    match key_text(obj, "dpopKey")? {
        Some(text) => crate::dpop::check_key(&text, alg.as_deref()).map(Some),
        None if alg.is_some() => Err(Error::config("dpopKeyAlg", "is only used with dpopKey")),
        None => Ok(None),
    }
}

/// `resource`: a string or an array of strings (one `resource` parameter each).
fn resources(obj: &JsValue) -> Result<Vec<String>, Error> {
    let v = get(obj, "resource");
    if absent(&v) {
        return Ok(Vec::new());
    }
    if let Some(one) = v.as_string() {
        return Ok(vec![one]);
    }
    let wrong = || Error::config("resource", "must be a string or an array of strings");
    if !js_sys::Array::is_array(&v) {
        return Err(wrong());
    }
    js_sys::Array::from(&v)
        .iter()
        .map(|r| r.as_string().ok_or_else(wrong))
        .collect()
}

/// `tokenParams` / `tokenHeaders`: an object of strings, sent in its own order.
fn string_pairs(obj: &JsValue, option: &str, core: &str) -> Result<Vec<(String, String)>, Error> {
    let v = get(obj, option);
    if absent(&v) {
        return Ok(Vec::new());
    }
    let wrong = || Error::config(core, "must be an object of strings");
    if !v.is_object() || js_sys::Array::is_array(&v) {
        return Err(wrong());
    }
    js_sys::Object::entries(v.unchecked_ref())
        .iter()
        .map(|pair| {
            let pair = js_sys::Array::from(&pair);
            Some((pair.get(0).as_string()?, pair.get(1).as_string()?))
        })
        .map(|p| p.ok_or_else(wrong))
        .collect()
}

/// `mintBudget`: `{ perHour, perDay, perMonth }` (whole numbers from 1, each optional), or the
/// Worker's text (`'3/hour, 50/day, 1000/month'`). Absent is no limit of the user's.
fn mint_budget(obj: &JsValue) -> Result<Vec<Limit>, Error> {
    let v = get(obj, "mintBudget");
    if absent(&v) {
        return Ok(Vec::new());
    }
    if let Some(text) = v.as_string() {
        return parse_limits(&text);
    }
    let wrong = || {
        Error::config(
            field::MINT_BUDGET,
            "must be { perHour, perDay, perMonth }: whole numbers from 1 (or '3/hour, 50/day')",
        )
    };
    if !v.is_object() || js_sys::Array::is_array(&v) {
        return Err(wrong());
    }
    let keys = own_keys(&v).map_err(|_| wrong())?;
    let mut limits = Vec::new();
    for key in keys.iter() {
        let key = key.as_string().unwrap_or_default();
        let window = match key.as_str() {
            "perHour" => Window::Hour,
            "perDay" => Window::Day,
            "perMonth" => Window::Month,
            _ => return Err(wrong()),
        };
        let n = get(&v, &key);
        if absent(&n) {
            continue;
        }
        match n.as_f64() {
            Some(max) if max.fract() == 0.0 && (1.0..=1e9).contains(&max) => limits.push(Limit {
                window,
                max: max as u64,
            }),
            _ => return Err(wrong()),
        }
    }
    Ok(limits)
}

/// Parses a URL option (`key`, the core's field `core`) with the platform's WHATWG parser and
/// checks it with the settings' rules.
fn url(obj: &JsValue, core: &str, default: &str) -> Result<String, Error> {
    let key = settings::option_name(core).unwrap_or(core);
    settings::url(core, normalize_url(&string(obj, key, Some(default))?))
}

/// Whether a user's object (a store) has these methods, own or inherited (a class instance's
/// methods live on its prototype).
pub(crate) fn has_methods(v: &JsValue, names: &[&str]) -> bool {
    names
        .iter()
        .all(|m| Reflect::get(v, &JsValue::from_str(m)).is_ok_and(|f| f.is_function()))
}

impl Options {
    pub(crate) fn read(options: &JsValue) -> Result<Self, Error> {
        if !options.is_object() {
            return Err(Error::config("options", "must be an object"));
        }
        let keys = own_keys(options).map_err(|_| Error::config("options", "could not be read"))?;
        // every option is read exactly once, into a plain snapshot that everything below reads:
        // a getter that answers differently the second time has nothing to answer
        let snapshot = js_sys::Object::new();
        for key in keys.iter() {
            let key = key.as_string().unwrap_or_default();
            if !KNOWN.contains(&key.as_str()) {
                return Err(Error::config(&key, "is not a known option"));
            }
            let value = own(options, &key)?;
            Reflect::set(&snapshot, &JsValue::from_str(&key), &value)
                .map_err(|_| Error::config("options", "could not be read"))?;
        }
        let options: &JsValue = &snapshot;
        let client_id = string(options, "clientId", None)?;
        let client_auth = settings::client_auth(optional_string(options, "clientAuth")?.as_deref())?;
        let secret = optional_string(options, "clientSecret")?.map(ClientSecret::new);
        let private_key = private_key(options)?;
        let credential = if secret.is_some() {
            "clientSecret"
        } else {
            "privateKey"
        };
        let allow_browser = get(options, "dangerouslyAllowBrowser");
        if !(absent(&allow_browser) || allow_browser.as_bool().is_some()) {
            return Err(Error::config("dangerouslyAllowBrowser", "must be a boolean"));
        }
        if in_browser() && allow_browser.as_bool() != Some(true) {
            return Err(Error::config(
                credential,
                "is refused in a browser, where anyone who opens the page can read it; keep the secret on a \
                 server (for example behind the autopay-auth Worker), or pass dangerouslyAllowBrowser: true \
                 if you accept that",
            ));
        }
        let token_url = url(options, field::TOKEN_URL, DEFAULT_TOKEN_URL)?;
        let audience = get(options, "audience");
        let audience = if audience.is_null() {
            None
        } else {
            Some(string(options, "audience", Some(DEFAULT_AUDIENCE))?)
        };
        let api_base_url = match settings::default_api_base(&token_url) {
            _ if !absent(&get(options, "apiBaseUrl")) => Some(url(options, field::API_BASE_URL, "")?),
            default => default.map(str::to_owned),
        };
        let body = settings::body_format(optional_string(options, "tokenRequest")?.as_deref())?;
        let mut config = Config::builder(&token_url, &client_id)
            .client_auth(client_auth)
            .body(body)
            .audience(audience.as_deref())
            .credentials(secret, private_key);
        if let Some(scope) = optional_string(options, "scope")? {
            config = config.scope(&scope);
        }
        if let Some(key) = dpop_key(options)? {
            config = config.dpop_key(key);
        }
        if let Some(label) = optional_string(options, "label")? {
            config = config.label(&label);
        }
        for resource in resources(options)? {
            config = config.resource(&resource);
        }
        for (name, value) in string_pairs(options, "tokenParams", field::TOKEN_PARAMS)? {
            config = config.param(&name, &value);
        }
        for (name, value) in string_pairs(options, "tokenHeaders", field::TOKEN_HEADERS)? {
            config = config.header(&name, &value);
        }
        let assumed = get(options, "defaultExpiresInSec");
        if !absent(&assumed) {
            let secs = settings::default_expires_in(assumed.as_f64().unwrap_or(f64::NAN))?;
            config = config.default_expires_in(secs);
        }
        let config = config.build()?;

        // the lifecycle policy, by the one table of names and ranges both edges use
        let number = |core: &'static str| {
            let v = get(options, settings::option_name(core).unwrap_or(core));
            (!absent(&v)).then(|| v.as_f64().unwrap_or(f64::NAN))
        };
        let store_outage = optional_string(options, "storeOutage")?;
        let policy = settings::policy(&number, store_outage.as_deref(), mint_budget(options)?)?;

        let fetch = get(options, "fetch");
        let fetch = if absent(&fetch) {
            Reflect::get(&js_sys::global(), &"fetch".into()).unwrap_or(JsValue::UNDEFINED)
        } else {
            fetch
        };
        let fetch: Function = fetch
            .dyn_into()
            .map_err(|_| Error::config("fetch", "must be a function (this runtime has no global fetch)"))?;

        let kv = get(options, "kv");
        let kv = if absent(&kv) {
            None
        } else if has_methods(&kv, &["get", "put", "delete"]) {
            let store = KvStore::user(kv.unchecked_into::<JsKv>())
                .map_err(|(option, why)| Error::config(option, why))?;
            Some(store)
        } else {
            return Err(Error::config(
                "kv",
                "must have get, put and delete methods (a KVNamespace)",
            ));
        };

        let fields_first = match string(options, "loggerArgs", Some("message-first"))?.as_str() {
            "message-first" => false,
            "fields-first" => true,
            _ => {
                return Err(Error::config(
                    "loggerArgs",
                    "must be 'message-first' (console, winston) or 'fields-first' (pino, bunyan)",
                ));
            }
        };
        let logger = own(options, "logger")?;
        let logger = if logger.is_undefined() {
            Reflect::get(&js_sys::global(), &"console".into())
                .ok()
                .filter(JsValue::is_object)
                .map(|console| Logger::new(console, fields_first))
        } else if logger.is_null() {
            None
        } else if has_methods(&logger, &["debug", "info", "warn", "error"]) {
            Some(Logger::new(logger, fields_first))
        } else {
            return Err(Error::config(
                "logger",
                "must have debug, info, warn and error methods (console, pino and winston do), or be null",
            ));
        };
        let on_event = optional_function(own(options, "onEvent")?, "onEvent")?;
        let telemetry = own(options, "telemetry")?;
        let wait_until = optional_function(own(options, "waitUntil")?, "waitUntil")?;

        Ok(Self {
            config,
            policy,
            api_base_url,
            fetch,
            kv,
            logger,
            telemetry,
            on_event,
            wait_until,
        })
    }
}
