//! The token endpoint's wire format: building the request and judging the answer. Both pure.

use std::fmt;
#[cfg(not(target_arch = "wasm32"))]
use std::time::UNIX_EPOCH;

use serde_json::Value;

use crate::assertion::ASSERTION_TYPE;
use crate::base64;
use crate::config::{BodyFormat, ClientAuth, Config};
use crate::error::{Error, ServerError};
use crate::record::TokenRecord;
use crate::secret::ClientSecret;

/// The only grant this client speaks.
pub const GRANT_TYPE: &str = "client_credentials";
/// Longest `error` / `error_description` kept from a refusal; the rest is cut.
const MAX_ERROR_FIELD: usize = 512;
/// Largest token answer read: a longer one is `invalid_response`, and transports stop reading
/// there.
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;
/// Longest access token accepted.
pub const MAX_ACCESS_TOKEN_LEN: usize = 8 * 1024;
/// Longest lifetime trusted: a longer `expires_in` is shortened to this (refreshing early is
/// always safe; trusting a token for years is not).
pub const MAX_LIFETIME_SECS: u64 = 7 * 86_400;

/// Whether `t` can be a token type: an HTTP authentication scheme name (RFC 9110 §11.1, a
/// `token`), at most 32 characters.
pub fn is_token_type(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 32
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `token` can go into `Authorization: Bearer …` as it is: RFC 6750's `b64token`
/// (letters, digits, `-._~+/`, then optional `=` padding), at most [`MAX_ACCESS_TOKEN_LEN`].
pub fn is_bearer_token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && token.len() <= MAX_ACCESS_TOKEN_LEN
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// One token request, ready for any HTTP client: `POST url` with `Content-Type: content_type`,
/// every one of `headers`, and `body`. `Debug` hides the body and every header's value, which
/// may carry the credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// Where to `POST`.
    pub url: String,
    /// `application/json` or `application/x-www-form-urlencoded`.
    pub content_type: &'static str,
    /// The headers to send besides `Content-Type` and `Accept`, names lowercase: `authorization`
    /// for `client_secret_basic` (a credential: hand it to the transport only), then the
    /// configuration's own ([`crate::ConfigBuilder::header`]).
    pub headers: Vec<(String, String)>,
    /// The body (may carry the client secret or an assertion: hand it to the transport and
    /// nothing else).
    pub body: String,
}

impl TokenRequest {
    /// The only method the endpoint accepts.
    pub const METHOD: &'static str = "POST";
    /// Autopay's content type.
    pub const JSON: &'static str = "application/json";
    /// RFC 6749's content type.
    pub const FORM: &'static str = "application/x-www-form-urlencoded";

    /// The value of header `name` (lowercase), if the request sends it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("TokenRequest")
            .field("url", &self.url)
            .field("content_type", &self.content_type)
            .field("headers", &names)
            .field("body", &"[redacted]")
            .finish()
    }
}

/// What one client-authentication method adds to a token request: body parameters and headers.
#[derive(Default)]
struct Authenticated<'a> {
    params: Vec<(&'a str, &'a str)>,
    headers: Vec<(String, String)>,
}

/// `client_secret_post`: the id and the secret in the body (Autopay's way).
fn secret_post<'a>(id: &'a str, secret: &'a ClientSecret) -> Authenticated<'a> {
    Authenticated {
        params: vec![("client_id", id), ("client_secret", secret.expose())],
        headers: Vec::new(),
    }
}

/// `client_secret_basic`: HTTP Basic of the id and the secret, each form-encoded first (RFC 6749
/// §2.3.1); nothing of them in the body.
fn secret_basic<'a>(id: &'a str, secret: &'a ClientSecret) -> Authenticated<'a> {
    let pair = format!("{}:{}", form_encode(id), form_encode(secret.expose()));
    Authenticated {
        params: Vec::new(),
        headers: vec![(
            "authorization".to_owned(),
            format!("Basic {}", base64::encode(pair.as_bytes())),
        )],
    }
}

/// `private_key_jwt`: the id and a signed assertion (RFC 7523 §2.2); no secret anywhere.
fn private_key_jwt<'a>(id: &'a str, assertion: &'a str) -> Authenticated<'a> {
    Authenticated {
        params: vec![
            ("client_id", id),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ],
        headers: Vec::new(),
    }
}

/// `tls_client_auth` and `self_signed_tls_client_auth`: the id only; the certificate on the TLS
/// connection is the proof (RFC 8705 §2).
fn mutual_tls(id: &str) -> Authenticated<'_> {
    Authenticated {
        params: vec![("client_id", id)],
        headers: Vec::new(),
    }
}

/// The method's parameters and headers. Exhaustive: a new method is a new arm and a new function,
/// never a fall-through into another method's credentials. A configuration always holds the
/// credential its method needs ([`crate::ConfigBuilder::build`]); should it not, nothing of a
/// credential is sent and the endpoint refuses.
fn authenticate<'a>(config: &'a Config, assertion: Option<&'a str>) -> Authenticated<'a> {
    let id = config.client_id();
    match config.client_auth() {
        ClientAuth::SecretPost => config.client_secret().map(|s| secret_post(id, s)),
        ClientAuth::SecretBasic => config.client_secret().map(|s| secret_basic(id, s)),
        ClientAuth::PrivateKeyJwt => Some(private_key_jwt(id, assertion.unwrap_or_default())),
        ClientAuth::TlsClientAuth | ClientAuth::SelfSignedTlsClientAuth => Some(mutual_tls(id)),
    }
    .unwrap_or_default()
}

/// Builds the token request for `config`. `assertion` is the signed client assertion, which
/// `private_key_jwt` needs (from [`crate::assertion::assertion_signing_input`] and a signer). With the
/// defaults this is exactly Autopay's contract: a JSON object of `client_id`, `client_secret`,
/// `audience` and `grant_type`, in that order.
pub fn build_token_request(config: &Config, assertion: Option<&str>) -> TokenRequest {
    let Authenticated {
        mut params,
        mut headers,
    } = authenticate(config, assertion);
    if let Some(audience) = config.audience() {
        params.push(("audience", audience));
    }
    params.push(("grant_type", GRANT_TYPE));
    if let Some(scope) = config.scope() {
        params.push(("scope", scope));
    }
    params.extend(config.params().iter().map(|(k, v)| (k.as_str(), v.as_str())));
    headers.extend(config.headers().iter().cloned());
    let (content_type, body) = match config.body() {
        BodyFormat::Form => {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.extend_pairs(&params);
            form.extend_pairs(config.resources().iter().map(|r| ("resource", r)));
            (TokenRequest::FORM, form.finish())
        }
        BodyFormat::Json => {
            // written in order (a JSON map would sort the keys): Autopay's body byte for byte
            let text = |v: &str| serde_json::to_string(v).unwrap_or_default();
            let mut members: Vec<String> = params
                .iter()
                .map(|(k, v)| format!("{}:{}", text(k), text(v)))
                .collect();
            match config.resources() {
                [] => {}
                [one] => members.push(format!("\"resource\":{}", text(one))),
                many => {
                    let all: Vec<String> = many.iter().map(|r| text(r)).collect();
                    members.push(format!("\"resource\":[{}]", all.join(",")));
                }
            }
            (TokenRequest::JSON, format!("{{{}}}", members.join(",")))
        }
    };
    TokenRequest {
        url: config.token_url().to_owned(),
        content_type,
        headers,
        body,
    }
}

/// `application/x-www-form-urlencoded` of one value (RFC 6749 §2.3.1 asks it of the id and the
/// secret before they go into Basic credentials).
fn form_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// What came back from the token endpoint, as the transport saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenResponse {
    /// HTTP status.
    pub status: u16,
    /// The `Retry-After` header, if present.
    pub retry_after: Option<String>,
    /// The body as text.
    pub body: String,
    /// The answer's headers, names lowercase, values as sent (at most [`MAX_RESPONSE_HEADERS`]):
    /// what the vendor declares of its quotas ([`crate::QUOTA_HEADERS`]) and anything a later
    /// step needs (a `DPoP-Nonce`).
    pub headers: Vec<(String, String)>,
}

/// Most headers kept of a token answer; the rest are dropped.
pub const MAX_RESPONSE_HEADERS: usize = 64;

impl TokenResponse {
    /// The value of header `name` (lowercase), if the answer had it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Judges the answer to a request that left at `sent_at_ms` (ms since the Unix epoch): a
/// record to cache, or the error to report. Expiry counts from when the request was *sent*, so
/// time in flight never extends a token's life. `default_expires_in` is the lifetime to assume
/// when a success has no `expires_in` (RFC 6749 only recommends it); without one such an answer
/// is `invalid_response`, never a token cached forever.
pub fn process_token_response(
    resp: &TokenResponse,
    sent_at_ms: u64,
    now_ms: u64,
    default_expires_in: Option<u64>,
) -> Result<TokenRecord, Error> {
    if resp.body.len() > MAX_TOKEN_RESPONSE_BYTES {
        return Err(invalid(resp.status, "the answer is larger than 64 KiB"));
    }
    match resp.status {
        200 => parse_success(resp, sent_at_ms, default_expires_in),
        400..=599 => Err(classify_refusal(resp, now_ms)),
        status => Err(Error::InvalidResponse {
            status,
            reason: "expected 200 with a token, or a 4xx/5xx error".into(),
        }),
    }
}

fn invalid(status: u16, reason: &str) -> Error {
    Error::InvalidResponse {
        status,
        reason: reason.to_owned(),
    }
}

fn parse_success(
    resp: &TokenResponse,
    sent_at_ms: u64,
    default_expires_in: Option<u64>,
) -> Result<TokenRecord, Error> {
    let status = resp.status;
    let value: Value = serde_json::from_str(&resp.body).map_err(|_| invalid(status, "body is not JSON"))?;
    let obj = value
        .as_object()
        .ok_or_else(|| invalid(status, "body is not a JSON object"))?;
    let access_token = match obj.get("access_token") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(invalid(status, "`access_token` must be a non-empty string")),
    };
    if !is_bearer_token(&access_token) {
        return Err(invalid(
            status,
            "`access_token` must be a bearer token (RFC 6750 characters, at most 8 KiB)",
        ));
    }
    // a number, or a numeric string (Azure AD v1 and some gateways send strings)
    let expires_in = match obj.get("expires_in") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        None | Some(Value::Null) => match default_expires_in {
            Some(assumed) => Some(assumed),
            None => {
                return Err(invalid(
                    status,
                    "`expires_in` is missing (set a lifetime to assume for this server)",
                ));
            }
        },
        Some(_) => None,
    };
    let expires_in = match expires_in {
        Some(n) if n > 0 && n <= u64::from(u32::MAX) => n.min(MAX_LIFETIME_SECS),
        _ => return Err(invalid(status, "`expires_in` must be a positive integer")),
    };
    // kept as the server sent it (`bearer`, `Bearer`, `DPoP`, `N_A`…): the authorization step
    // ([`authorize`]) decides how a type is presented, and refuses one it cannot present
    let token_type = match obj.get("token_type") {
        Some(Value::String(t)) if is_token_type(t) => t.clone(),
        _ => {
            return Err(invalid(
                status,
                "`token_type` must be a token type (an HTTP authentication scheme name)",
            ));
        }
    };
    let scope = match obj.get("scope") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(invalid(status, "`scope` must be a string")),
    };
    let expires_at_ms = sent_at_ms
        .checked_add(expires_in * 1000)
        .ok_or_else(|| invalid(status, "`expires_in` is out of range"))?;
    Ok(TokenRecord {
        access_token,
        token_type,
        scope,
        issued_at_ms: sent_at_ms,
        expires_at_ms,
    })
}

fn classify_refusal(resp: &TokenResponse, now_ms: u64) -> Error {
    let body: Option<Value> = serde_json::from_str(&resp.body).ok();
    let field = |k: &str| text_field(body.as_ref().and_then(|b| b.get(k)).cloned());
    let server = ServerError {
        status: resp.status,
        error: field("error"),
        description: field("error_description"),
        retry_after: resp
            .retry_after
            .as_deref()
            .and_then(|h| parse_retry_after(h, now_ms)),
    };
    match resp.status {
        401 | 403 => Error::AccessDenied(server),
        429 => Error::RateLimited(server),
        400..=499 => Error::InvalidRequest(server),
        _ => Error::Server(server),
    }
}

fn text_field(v: Option<Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => Some(s.chars().take(MAX_ERROR_FIELD).collect()),
        _ => None,
    }
}

/// Parses `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3), as seconds from `now_ms`.
pub fn parse_retry_after(header: &str, now_ms: u64) -> Option<u64> {
    let h = header.trim();
    if let Ok(secs) = h.parse::<u64>() {
        return Some(secs);
    }
    Some(http_date_ms(h)?.saturating_sub(now_ms) / 1000)
}

/// An HTTP-date as ms since the Unix epoch, by the `httpdate` crate natively…
#[cfg(not(target_arch = "wasm32"))]
fn http_date_ms(date: &str) -> Option<u64> {
    let when = httpdate::parse_http_date(date).ok()?;
    Some(when.duration_since(UNIX_EPOCH).ok()?.as_millis() as u64)
}

/// …and by the platform's `Date.parse` in the JS hosts (it reads every HTTP-date format), which
/// keeps a date parser out of their wasm.
#[cfg(all(target_arch = "wasm32", any(feature = "npm", feature = "worker-front")))]
fn http_date_ms(date: &str) -> Option<u64> {
    let ms = js_sys::Date::parse(date);
    (ms.is_finite() && ms >= 0.0).then_some(ms as u64)
}

/// A wasm build without a JS host has no date parser: only delay-seconds are read.
#[cfg(all(target_arch = "wasm32", not(any(feature = "npm", feature = "worker-front"))))]
fn http_date_ms(_date: &str) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(not(target_arch = "wasm32"))]
    use std::time::{Duration, UNIX_EPOCH};

    use crate::config::{DEFAULT_AUDIENCE, DEFAULT_TOKEN_URL};
    use crate::secret::ClientSecret;

    fn resp(status: u16, body: &str) -> TokenResponse {
        TokenResponse {
            status,
            retry_after: None,
            headers: Vec::new(),
            body: body.to_owned(),
        }
    }

    #[test]
    fn request_is_exactly_the_contract() {
        let cfg = Config::new(
            DEFAULT_TOKEN_URL,
            "cid",
            ClientSecret::new("sec\"ret"),
            DEFAULT_AUDIENCE,
        )
        .unwrap();
        let req = build_token_request(&cfg, None);
        assert_eq!(req.url, "https://api-auth.autopay.io/oauth/token");
        assert_eq!(
            (req.content_type, req.headers.is_empty()),
            ("application/json", true)
        );
        assert_eq!(
            req.body,
            r#"{"client_id":"cid","client_secret":"sec\"ret","audience":"https://api.autopay.io","grant_type":"client_credentials"}"#,
            "Autopay's body, byte for byte"
        );
        let body: Value = serde_json::from_str(&req.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "client_id": "cid",
                "client_secret": "sec\"ret",
                "audience": "https://api.autopay.io",
                "grant_type": "client_credentials"
            })
        );
        assert!(!format!("{req:?}").contains("sec"));
    }

    #[test]
    fn success_expiry_counts_from_send_time() {
        let r = process_token_response(
            &resp(
                200,
                r#"{"access_token":"abc","scope":"customer_club","expires_in":86400,"token_type":"bearer"}"#,
            ),
            1_000,
            9_000,
            None,
        )
        .unwrap();
        assert_eq!(r.access_token, "abc");
        assert_eq!(r.token_type, "bearer", "kept as the server sent it");
        assert_eq!(r.scope.as_deref(), Some("customer_club"));
        assert_eq!(r.issued_at_ms, 1_000);
        assert_eq!(r.expires_at_ms, 1_000 + 86_400_000);
    }

    fn form(body: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(body.as_bytes()).into_owned().collect()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn form_requests_follow_rfc_6749() {
        let url = "https://as.example/oauth2/token";
        let cfg = Config::builder(url, "my client")
            .client_secret(ClientSecret::new("a+b%c:d&e"))
            .body(BodyFormat::Form)
            .audience(None)
            .scope("read write")
            .resource("https://api.example/a")
            .resource("https://api.example/b?x=1&y=2")
            .build()
            .unwrap();
        let req = build_token_request(&cfg, None);
        assert_eq!(req.content_type, "application/x-www-form-urlencoded");
        assert_eq!(
            form(&req.body),
            pairs(&[
                ("client_id", "my client"),
                ("client_secret", "a+b%c:d&e"),
                ("grant_type", "client_credentials"),
                ("scope", "read write"),
                ("resource", "https://api.example/a"),
                ("resource", "https://api.example/b?x=1&y=2"),
            ])
        );
        assert!(req.headers.is_empty());
    }

    #[test]
    fn basic_credentials_are_form_encoded_first() {
        let cfg = Config::builder("https://as.example/token", "id:1 é")
            .client_secret(ClientSecret::new("a+b%c:d"))
            .client_auth(ClientAuth::SecretBasic)
            .body(BodyFormat::Form)
            .audience(Some("https://api.example"))
            .build()
            .unwrap();
        let req = build_token_request(&cfg, None);
        let basic = req.header("authorization").unwrap().to_owned();
        let decoded = base64::decode(basic.strip_prefix("Basic ").unwrap()).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "id%3A1+%C3%A9:a%2Bb%25c%3Ad");
        assert_eq!(
            form(&req.body),
            pairs(&[
                ("audience", "https://api.example"),
                ("grant_type", "client_credentials")
            ]),
            "no credentials in the body"
        );
        assert!(
            !format!("{req:?}").contains(&basic[6..]),
            "Debug hides the credentials"
        );
    }

    #[test]
    fn further_parameters_and_headers_are_sent_and_keyed() {
        let base = || {
            Config::builder("https://as.example/token", "cid")
                .client_secret(ClientSecret::new("s"))
                .body(BodyFormat::Form)
        };
        let cfg = base()
            .param("organization", "org_1")
            .header("X-Tenant", "acme")
            .build()
            .unwrap();
        let req = build_token_request(&cfg, None);
        let fields = form(&req.body);
        assert_eq!(
            fields.last().unwrap(),
            &("organization".to_owned(), "org_1".to_owned())
        );
        assert_eq!(req.header("x-tenant"), Some("acme"));
        assert!(
            !format!("{req:?}").contains("acme"),
            "Debug shows header names only"
        );
        // each differs in one further field only: never one record, lock or flight
        let keys: std::collections::HashSet<String> = [
            base().build().unwrap(),
            cfg.clone(),
            base()
                .param("organization", "org_2")
                .header("X-Tenant", "acme")
                .build()
                .unwrap(),
            base()
                .param("organization", "org_1")
                .header("X-Tenant", "beta")
                .build()
                .unwrap(),
            base().param("organization", "org_1").build().unwrap(),
            base().header("X-Tenant", "acme").build().unwrap(),
        ]
        .iter()
        .map(|c| c.cache_key().to_owned())
        .collect();
        assert_eq!(keys.len(), 6);
        for reserved in [
            "client_id",
            "client_secret",
            "grant_type",
            "scope",
            "client_assertion",
        ] {
            let err = base().param(reserved, "x").build().unwrap_err();
            assert_eq!(err.field(), Some(crate::field::TOKEN_PARAMS), "{reserved}");
        }
        for reserved in ["Authorization", "host", "Content-Type", "bad name", "x\r\n"] {
            let err = base().header(reserved, "x").build().unwrap_err();
            assert_eq!(err.field(), Some(crate::field::TOKEN_HEADERS), "{reserved}");
        }
        let err = base().header("x-ok", "a\r\nb: c").build().unwrap_err();
        assert_eq!(err.field(), Some(crate::field::TOKEN_HEADERS));
        // Autopay's endpoint is sent only Autopay's request: further parameters are another vendor's
        let err = Config::builder(crate::DEFAULT_TOKEN_URL, "cid")
            .client_secret(ClientSecret::new("s"))
            .param("organization", "o")
            .build()
            .unwrap_err();
        assert_eq!(err.field(), Some(crate::field::TOKEN_URL));
    }

    #[test]
    fn private_key_jwt_sends_the_assertion_and_no_secret() {
        let jwk = r#"{"kty":"EC","crv":"P-256","x":"AA","y":"AA","d":"AA"}"#;
        let cfg = Config::builder("https://as.example/token", "cid")
            .private_key(crate::PrivateKey::parse(jwk, None, None).unwrap())
            .client_auth(ClientAuth::PrivateKeyJwt)
            .resource("https://api.example")
            .build()
            .unwrap();
        let req = build_token_request(&cfg, Some("h.c.s"));
        let body: Value = serde_json::from_str(&req.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "client_id": "cid",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": "h.c.s",
                "audience": "https://api.autopay.io",
                "grant_type": "client_credentials",
                "resource": "https://api.example",
            })
        );
    }

    #[test]
    fn expires_in_as_real_servers_send_it() {
        let ok = |body: &str, assumed| {
            process_token_response(&resp(200, body), 0, 0, assumed).map(|r| r.lifetime_ms())
        };
        assert_eq!(
            ok(
                r#"{"access_token":"t","expires_in":"3599","token_type":"bearer"}"#,
                None
            ),
            Ok(3_599_000)
        );
        assert_eq!(
            ok(
                r#"{"access_token":"t","expires_in":60,"token_type":"BEARER","scope":null}"#,
                None
            ),
            Ok(60_000)
        );
        let missing = r#"{"access_token":"t","token_type":"Bearer"}"#;
        assert_eq!(ok(missing, Some(300)), Ok(300_000));
        assert_eq!(
            ok(
                r#"{"access_token":"t","token_type":"Bearer","expires_in":null}"#,
                Some(300)
            ),
            Ok(300_000)
        );
        let err = ok(missing, None).unwrap_err();
        assert_eq!(err.code(), "invalid_response");
        assert!(err.to_string().contains("expires_in"), "{err}");
        assert_eq!(
            ok(
                r#"{"access_token":"t","expires_in":"0","token_type":"Bearer"}"#,
                Some(300)
            )
            .unwrap_err()
            .code(),
            "invalid_response",
            "a lifetime that is there but wrong is not replaced by the assumed one"
        );
    }

    #[test]
    fn rfc_6749_errors_reach_the_caller() {
        let cases = [
            (401, "invalid_client", "access_denied"),
            (400, "invalid_client", "invalid_request"),
            (400, "invalid_scope", "invalid_request"),
            (400, "unauthorized_client", "invalid_request"),
            (400, "unsupported_grant_type", "invalid_request"),
        ];
        for (status, error, code) in cases {
            let body = format!(r#"{{"error":"{error}","error_description":"said {error}"}}"#);
            let err = process_token_response(&resp(status, &body), 0, 0, None).unwrap_err();
            assert_eq!((err.code(), err.status()), (code, Some(status)));
            let s = err.server().unwrap();
            assert_eq!(s.error.as_deref(), Some(error));
            assert_eq!(s.description.as_deref(), Some(format!("said {error}").as_str()));
        }
    }

    #[test]
    fn malformed_successes_are_invalid_response() {
        let bodies = [
            "not json",
            "[]",
            r#"{"expires_in":60,"token_type":"Bearer"}"#,
            r#"{"access_token":"","expires_in":60,"token_type":"Bearer"}"#,
            r#"{"access_token":5,"expires_in":60,"token_type":"Bearer"}"#,
            r#"{"access_token":"t","token_type":"Bearer"}"#,
            r#"{"access_token":"t","expires_in":0,"token_type":"Bearer"}"#,
            r#"{"access_token":"t","expires_in":-5,"token_type":"Bearer"}"#,
            r#"{"access_token":"t","expires_in":1.5,"token_type":"Bearer"}"#,
            r#"{"access_token":"t","expires_in":"6O","token_type":"Bearer"}"#,
            r#"{"access_token":"t","expires_in":"","token_type":"Bearer"}"#,
            r#"{"access_token":"t","expires_in":"-60","token_type":"Bearer"}"#,
            r#"{"access_token":"t","expires_in":true,"token_type":"Bearer"}"#,
            r#"{"access_token":"t","expires_in":99999999999,"token_type":"Bearer"}"#,
            r#"{"access_token":"t","expires_in":60}"#,
            r#"{"access_token":"t","expires_in":60,"token_type":"Bearer x"}"#,
            r#"{"access_token":"t","expires_in":60,"token_type":""}"#,
            r#"{"access_token":"t","expires_in":60,"token_type":7}"#,
            r#"{"access_token":"t","expires_in":60,"token_type":"Bearer","scope":7}"#,
            r#"{"access_token":"a\r\nX-Evil: 1","expires_in":60,"token_type":"Bearer"}"#,
            r#"{"access_token":"a b","expires_in":60,"token_type":"Bearer"}"#,
            r#"{"access_token":"=","expires_in":60,"token_type":"Bearer"}"#,
            r#"{"access_token":"tok\u00e9","expires_in":60,"token_type":"Bearer"}"#,
        ];
        for body in bodies {
            let err = process_token_response(&resp(200, body), 0, 0, None).unwrap_err();
            assert_eq!(err.code(), "invalid_response", "{body}");
            assert_eq!(err.status(), Some(200));
        }
        assert_eq!(
            process_token_response(&resp(204, ""), 0, 0, None)
                .unwrap_err()
                .code(),
            "invalid_response"
        );
        assert_eq!(
            process_token_response(&resp(302, ""), 0, 0, None)
                .unwrap_err()
                .code(),
            "invalid_response"
        );
    }

    #[test]
    fn bearer_tokens_are_header_safe_and_bounded() {
        for good in ["abc", "a-b.c_d~e+f/g", "YWJj==", "eyJhbGciOi.eyJzdWIi.c2ln"] {
            assert!(is_bearer_token(good), "{good}");
        }
        let long = "a".repeat(MAX_ACCESS_TOKEN_LEN + 1);
        for bad in ["", "==", "a=b", "a b", "a\r\nb", "a\0", "ä", "a,b", &long] {
            assert!(!is_bearer_token(bad), "{bad:?}");
        }
        assert!(is_bearer_token(&"a".repeat(MAX_ACCESS_TOKEN_LEN)));
    }

    #[test]
    fn oversized_answers_and_lifetimes() {
        let big = format!(
            r#"{{"access_token":"t","expires_in":60,"token_type":"Bearer","pad":"{}"}}"#,
            "x".repeat(MAX_TOKEN_RESPONSE_BYTES)
        );
        assert_eq!(
            process_token_response(&resp(200, &big), 0, 0, None)
                .unwrap_err()
                .code(),
            "invalid_response"
        );
        let year = r#"{"access_token":"t","expires_in":31536000,"token_type":"Bearer"}"#;
        let r = process_token_response(&resp(200, year), 0, 0, None).unwrap();
        assert_eq!(
            r.lifetime_ms(),
            MAX_LIFETIME_SECS * 1000,
            "a year is trusted for a week"
        );
    }

    #[test]
    fn refusals_keep_error_description_and_status() {
        let denied = r#"{ "error": "access_denied", "error_description": "Unauthorized" }"#;
        let cases = [
            (401, denied, "access_denied"),
            (403, denied, "access_denied"),
            (
                400,
                r#"{"error":"invalid_request","error_description":"bad audience"}"#,
                "invalid_request",
            ),
            (
                429,
                r#"{"error":"rate_limited","error_description":"slow down"}"#,
                "rate_limited",
            ),
            (500, "<html>oops</html>", "server_error"),
            (503, "", "server_error"),
        ];
        for (status, body, code) in cases {
            let err = process_token_response(&resp(status, body), 0, 0, None).unwrap_err();
            assert_eq!(err.code(), code);
            assert_eq!(err.status(), Some(status));
            assert!(!err.to_string().contains("<html>"));
        }
        let err = process_token_response(&resp(401, denied), 0, 0, None).unwrap_err();
        let s = err.server().unwrap();
        assert_eq!(s.error.as_deref(), Some("access_denied"));
        assert_eq!(s.description.as_deref(), Some("Unauthorized"));
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = 1_700_000_000_000;
        assert_eq!(parse_retry_after("120", now), Some(120));
        assert_eq!(parse_retry_after(" 7 ", now), Some(7));
        // HTTP dates: parsed with httpdate natively (the wasm hosts use the platform's Date.parse,
        // tested through the npm package)
        #[cfg(not(target_arch = "wasm32"))]
        {
            let date = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(now + 30_000));
            assert_eq!(parse_retry_after(&date, now), Some(30));
            let past = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(now - 30_000));
            assert_eq!(parse_retry_after(&past, now), Some(0));
        }
        assert_eq!(parse_retry_after("soon", now), None);
        let mut r = resp(429, "{}");
        r.retry_after = Some("3".into());
        assert_eq!(
            process_token_response(&r, 0, now, None)
                .unwrap_err()
                .retry_after(),
            Some(3)
        );
    }
}
