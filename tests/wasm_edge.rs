//! The npm edge compiled to wasm and run in Node (wasm-bindgen-test): options, the fetch
//! transport, the KV adapter, the lease, timeouts and the API retry, with JS fakes.
#![cfg(all(target_arch = "wasm32", feature = "npm"))]

use autopay_auth::WasmClient;
use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

const SECRET: &str = "wasm-test-secret-0123456789";

fn get(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &k.into()).unwrap()
}

/// A fake fetch that records requests in `log` and answers token requests from `answers`
/// (JSON list of [status, body]; when empty, a fresh token each time) and API calls with 200
/// unless the token is in `refused`.
fn fake_fetch(answers: &str) -> (Function, JsValue) {
    let log = js_sys::Array::new();
    let make = Function::new_with_args(
        "log, answers",
        r#"let n = 0;
        return async (url, init) => {
          log.push({ url, method: init.method, headers: new Headers(init.headers), body: init.body });
          if (url.endsWith('/oauth/token')) {
            const a = answers.shift();
            if (a) return new Response(a[1], { status: a[0], headers: a[2] || {} });
            n += 1;
            return new Response(JSON.stringify({ access_token: 'tok-' + n, expires_in: 3600, token_type: 'Bearer', scope: 'customer_club' }), { status: 200 });
          }
          const auth = new Headers(init.headers).get('authorization');
          return new Response('api', { status: auth === 'Bearer tok-1' ? 401 : 200 });
        };"#,
    );
    let answers = js_sys::JSON::parse(answers).unwrap();
    let f = make.call2(&JsValue::NULL, &log, &answers).unwrap();
    (f.unchecked_into(), log.into())
}

fn options(fetch: &JsValue, extra: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in [
        ("clientId", JsValue::from("client-1")),
        ("clientSecret", JsValue::from(SECRET)),
        ("tokenUrl", JsValue::from("https://auth.example/oauth/token")),
        ("apiBaseUrl", JsValue::from("https://api.example/v1")),
        ("fetch", fetch.clone()),
    ] {
        Reflect::set(&o, &k.into(), &v).unwrap();
    }
    for (k, v) in extra {
        Reflect::set(&o, &(*k).into(), v).unwrap();
    }
    o.into()
}

async fn wait(p: Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(p).await
}

fn client(opts: JsValue) -> (WasmClient, Object) {
    let lease = Object::new();
    (WasmClient::new(opts, lease.clone()).unwrap(), lease)
}

#[wasm_bindgen_test]
fn bad_options_name_the_option_and_never_the_secret() {
    let (f, _) = fake_fetch("[]");
    let cases: Vec<(JsValue, &str)> = vec![
        (options(&f, &[("clientId", JsValue::from(5))]), "clientId"),
        (
            options(&f, &[("clientSecret", JsValue::UNDEFINED)]),
            "clientSecret",
        ),
        (
            options(&f, &[("tokenUrl", "http://auth.example/t".into())]),
            "tokenUrl",
        ),
        (options(&f, &[("apiBaseUrl", "not a url".into())]), "apiBaseUrl"),
        (options(&f, &[("kv", Object::new().into())]), "kv"),
        (options(&f, &[("fetch", JsValue::from("fetch"))]), "fetch"),
        (options(&f, &[("timeoutMs", JsValue::from(-1))]), "timeoutMs"),
        (options(&f, &[("refreshRatio", JsValue::from(2))]), "refreshRatio"),
        (
            options(&f, &[("clientSecretTypo", JsValue::from("x"))]),
            "clientSecretTypo",
        ),
    ];
    for (opts, option) in cases {
        let err = WasmClient::new(opts, Object::new()).err().expect(option);
        assert_eq!(get(&err, "code"), "invalid_config");
        assert_eq!(get(&err, "field"), option);
        let text = js_sys::JSON::stringify(&err).unwrap().as_string().unwrap();
        assert!(!text.contains(SECRET), "{text}");
    }
}

#[wasm_bindgen_test]
async fn token_request_follows_the_contract_and_publishes_a_lease() {
    let (f, log) = fake_fetch("[]");
    let (c, lease) = client(options(&f, &[]));
    assert_eq!(get(&lease, "until"), 0);
    let info = wait(c.token_info(JsValue::UNDEFINED)).await.unwrap();
    assert_eq!(get(&info, "accessToken"), "tok-1");
    assert_eq!(get(&info, "source"), "network");
    assert_eq!(get(&info, "scope"), "customer_club");
    let req = get(&log, "0");
    assert_eq!(get(&req, "url"), "https://auth.example/oauth/token");
    assert_eq!(get(&req, "method"), "POST");
    let headers: web_sys::Headers = get(&req, "headers").unchecked_into();
    assert_eq!(
        headers.get("content-type").unwrap().as_deref(),
        Some("application/json")
    );
    let body = js_sys::JSON::parse(&get(&req, "body").as_string().unwrap()).unwrap();
    assert_eq!(get(&body, "client_id"), "client-1");
    assert_eq!(get(&body, "client_secret"), SECRET);
    assert_eq!(get(&body, "audience"), "https://api.autopay.io");
    assert_eq!(get(&body, "grant_type"), "client_credentials");
    // the lease lets the JS wrapper answer for 75 % ± 5 % of the hour without calling in
    let until = get(&lease, "until").as_f64().unwrap();
    let issued = get(&info, "expiresAt").as_f64().unwrap() - 3_600_000.0;
    let offset = until - issued;
    assert!((2_520_000.0..=2_880_000.0).contains(&offset), "{offset}");
    assert_eq!(get(&get(&lease, "info"), "accessToken"), "tok-1");
    let again = wait(c.token_info(JsValue::UNDEFINED)).await.unwrap();
    assert_eq!(get(&again, "source"), "memory");
    assert_eq!(get(&c.stats(), "mints"), 1);
}

#[wasm_bindgen_test]
async fn refusals_keep_status_error_and_description() {
    let (f, _) = fake_fetch(
        r#"[[401, "{\"error\":\"access_denied\",\"error_description\":\"Unauthorized\"}"],
           [429, "{\"error\":\"rate_limited\",\"error_description\":\"slow\"}", {"retry-after": "7"}]]"#,
    );
    let (c, _) = client(options(&f, &[]));
    let e = wait(c.token_info(JsValue::UNDEFINED)).await.unwrap_err();
    assert_eq!(get(&e, "code"), "access_denied");
    assert_eq!(get(&e, "status"), 401);
    assert_eq!(get(&e, "error"), "access_denied");
    assert_eq!(get(&e, "description"), "Unauthorized");
    // the refusal is held: the same error again, without a request, until invalidate()
    let held = wait(c.token_info(JsValue::UNDEFINED)).await.unwrap_err();
    assert_eq!(get(&held, "code"), "access_denied");
    wait(c.invalidate()).await.unwrap();
    let e = wait(c.token_info(JsValue::UNDEFINED)).await.unwrap_err();
    assert_eq!(get(&e, "code"), "rate_limited");
    assert_eq!(get(&e, "retryAfter"), 7);
}

#[wasm_bindgen_test]
async fn a_hanging_endpoint_times_out() {
    let hang = Function::new_with_args(
        "url, init",
        // like a real socket, the pending request keeps Node's event loop alive
        "return new Promise((_, reject) => { const alive = setTimeout(() => {}, 10000); \
         init.signal.addEventListener('abort', () => { clearTimeout(alive); reject(init.signal.reason); }); });",
    );
    let (c, _) = client(options(&hang, &[("timeoutMs", JsValue::from(50))]));
    let e = wait(c.token_info(JsValue::UNDEFINED)).await.unwrap_err();
    assert_eq!(get(&e, "code"), "timeout");
}

#[wasm_bindgen_test]
async fn a_throwing_kv_is_counted_and_survived() {
    let (f, _) = fake_fetch("[]");
    let kv = Function::new_no_args(
        "return { get: async () => { throw new Error('kv down') }, put: () => { throw new Error('kv down') }, delete: async () => {} };",
    )
    .call0(&JsValue::NULL)
    .unwrap();
    let (c, _) = client(options(&f, &[("kv", kv)]));
    let info = wait(c.token_info(JsValue::UNDEFINED)).await.unwrap();
    assert_eq!(get(&info, "accessToken"), "tok-1");
    // the store is tried for storeWaitMs (11 gets, every 500 ms), then this instance mints
    // alone, and its record's put fails too (minted alone: no fleet state is written for it)
    assert_eq!(get(&c.stats(), "kvErrors"), 12);
}

#[wasm_bindgen_test]
async fn api_401_drops_the_token_and_retries_once() {
    let (f, log) = fake_fetch("[]");
    let (c, lease) = client(options(&f, &[]));
    let init = Object::new();
    Reflect::set(&init, &"method".into(), &"POST".into()).unwrap();
    Reflect::set(&init, &"body".into(), &"payload".into()).unwrap();
    let resp = wait(c.fetch("/things?a=1".into(), init.into(), None))
        .await
        .unwrap();
    assert_eq!(get(&resp, "status"), 200);
    let urls: Vec<String> = js_sys::Array::from(&log)
        .iter()
        .map(|r| get(&r, "url").as_string().unwrap())
        .collect();
    assert_eq!(
        urls,
        [
            "https://auth.example/oauth/token",
            "https://api.example/v1/things?a=1",
            "https://auth.example/oauth/token",
            "https://api.example/v1/things?a=1",
        ]
    );
    assert_eq!(get(&get(&lease, "info"), "accessToken"), "tok-2");
    // leaving the base is refused before any request
    let e = wait(c.fetch("/../admin".into(), JsValue::UNDEFINED, None))
        .await
        .unwrap_err();
    assert_eq!(get(&e, "code"), "invalid_argument");
    let e = wait(c.fetch(JsValue::from(5), JsValue::UNDEFINED, None))
        .await
        .unwrap_err();
    assert_eq!(get(&e, "code"), "invalid_argument");
}
