//! Calls to the protected API: where a bearer token may be sent, when a refused call is retried,
//! and [`call_api`], the one "401 → drop that token → one retry" loop that the npm package's
//! `fetch` and the Worker's proxy both run.

use std::future::Future;

use crate::error::Error;

/// A token as an API call presents it ([`crate::authorize`]): its type as the token endpoint
/// sent it, and the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    /// `Bearer`, `bearer`, … as sent.
    pub token_type: String,
    /// The access token.
    pub access_token: String,
}

impl From<&crate::TokenRecord> for ApiToken {
    fn from(r: &crate::TokenRecord) -> Self {
        Self {
            token_type: r.token_type.clone(),
            access_token: r.access_token.clone(),
        }
    }
}

/// One call to the protected API with a token, as an edge makes it.
pub trait ApiCall {
    /// What the API answered.
    type Response;
    /// Why the call failed (the edge's own error type).
    type Failure;
    /// A token to send now.
    fn token(&mut self) -> impl Future<Output = Result<ApiToken, Self::Failure>>;
    /// Sends the call authorized with `token` (through [`crate::authorize`]): the answer and its
    /// HTTP status.
    fn send(
        &mut self,
        token: &ApiToken,
    ) -> impl Future<Output = Result<(Self::Response, u16), Self::Failure>>;
    /// The API refused `token`: drop it wherever it is still the cached token. Returns whether
    /// another token may help (false while a refusal hold keeps the token: see
    /// [`crate::Machine::refused`]).
    fn refused(&mut self, token: &str) -> impl Future<Output = bool>;
    /// Whether the request can be sent once more (its body can be replayed; an edge may have to
    /// wait to know).
    fn replayable(&mut self) -> impl Future<Output = bool>;
    /// Whether `response` (a 401) asks for a DPoP proof with the server's nonce, which the edge
    /// has now learned (RFC 9449 §9): then the call is made once more, with the same token. A
    /// client without a DPoP key is never asked.
    fn nonce_challenged(&mut self, response: &Self::Response) -> bool {
        let _ = response;
        false
    }
}

/// Makes `call`: after a 401 the token is dropped (compare-and-delete) and, when the request
/// can be replayed and another token may help, the call is made once more with a new token.
/// A 401 that asks for a DPoP nonce is no refusal of the token: the call is made once more with
/// it. Any other answer is returned.
pub async fn call_api<A: ApiCall>(call: &mut A) -> Result<A::Response, A::Failure> {
    let mut attempt = 0;
    let mut nonce_retried = false;
    loop {
        let token = call.token().await?;
        let (response, status) = call.send(&token).await?;
        if status == API_UNAUTHORIZED
            && !nonce_retried
            && call.nonce_challenged(&response)
            && call.replayable().await
        {
            nonce_retried = true;
            continue;
        }
        let retry = status == API_UNAUTHORIZED
            && call.refused(&token.access_token).await
            && should_retry_api_call(status, attempt, call.replayable().await);
        if !retry {
            return Ok(response);
        }
        attempt += 1;
    }
}

/// The one status after which a call is retried, with a new token.
pub const API_UNAUTHORIZED: u16 = 401;

/// Joins an API path onto the API base URL: `base` + `path`, where `path` must start with `/`.
/// The result still has to be normalised by the platform's URL parser and checked with
/// [`check_within_base`], since dot segments can climb out of the base path.
pub fn join_api_path(base: &str, path: &str) -> Result<String, Error> {
    if !path.starts_with('/') || path.starts_with("//") {
        return Err(Error::argument(
            "path must start with a single `/` and is taken relative to apiBaseUrl",
        ));
    }
    if path.chars().any(|c| c.is_control() || c == ' ') {
        return Err(Error::argument(
            "path must not contain spaces or control characters",
        ));
    }
    Ok(format!("{}{}", base.trim_end_matches('/'), path))
}

/// What a proxied path may not hold, percent-encoded: a dot, a slash or a backslash (`%2e`,
/// `%2f`, `%5c`, any case, also double-encoded as `%252e` …). They stay under the base as sent,
/// but an upstream that decodes before routing would resolve them outside it. The Worker's proxy
/// refuses them, for the front's bodiless calls and the Rust route's alike.
#[cfg_attr(not(feature = "worker-front"), allow(dead_code))]
pub const ENCODED_SEPARATORS: [&str; 3] = ["2e", "2f", "5c"];

/// Whether a proxied `path` (without its query) smuggles a separator past the base check: an
/// [`ENCODED_SEPARATORS`] escape, or a `;` path parameter (`/..;/admin`). Gateways refuse these
/// (Envoy: `path_with_escaped_slashes_action: REJECT_REQUEST`); so does the Worker, with 400.
#[cfg_attr(not(feature = "worker-front"), allow(dead_code))]
pub fn smuggles_separator(path: &str) -> bool {
    if path.contains(';') {
        return true;
    }
    let lower = path.to_ascii_lowercase();
    lower.match_indices('%').any(|(i, _)| {
        let mut rest = &lower[i + 1..];
        while let Some(deeper) = rest.strip_prefix("25") {
            rest = deeper; // `%25` encodes `%`: look through any depth of it
        }
        ENCODED_SEPARATORS.iter().any(|e| rest.starts_with(e))
    })
}

/// Whether the normalised `target` URL stays inside the normalised `base` URL (same origin, and
/// under the base path). A bearer token is only ever sent to such a URL.
pub fn check_within_base(base: &str, target: &str) -> Result<(), Error> {
    let b = base.trim_end_matches('/');
    let inside = target == b
        || target
            .strip_prefix(b)
            .is_some_and(|rest| rest.starts_with(['/', '?']));
    if inside {
        Ok(())
    } else {
        Err(Error::argument(
            "the request would leave apiBaseUrl; the token is only sent there",
        ))
    }
}

/// Whether an API answer with `status` on attempt `attempt` (0 = first) should be retried with
/// a new token: only a 401, only once, and only when the request body can be sent again.
pub fn should_retry_api_call(status: u16, attempt: u32, body_replayable: bool) -> bool {
    status == API_UNAUTHORIZED && attempt == 0 && body_replayable
}

/// How a gateway (the Worker's proxy and `/token`) answers when it could not get a token:
/// `503` with a `Retry-After` (seconds) when Autopay rate-limited us, the mint budget is spent,
/// or the token service or minting authority could not be reached in time; `502` otherwise.
/// The body carries Autopay's `error` / `error_description`, never its raw body.
pub fn gateway_status(err: &Error) -> (u16, Option<u64>) {
    match err {
        Error::RateLimited(s) => (
            503,
            Some(s.retry_after.unwrap_or(DEFAULT_GATEWAY_RETRY_AFTER_SECS)),
        ),
        Error::MintBudgetExhausted { retry_after } => (503, Some(*retry_after)),
        Error::Network { .. } | Error::Timeout { .. } | Error::StoreUnavailable { .. } => {
            (503, Some(UNAVAILABLE_RETRY_AFTER_SECS))
        }
        Error::InvalidConfig { .. } => (500, None),
        _ => (502, None),
    }
}

/// `Retry-After` sent when Autopay rate-limited us without saying for how long.
pub const DEFAULT_GATEWAY_RETRY_AFTER_SECS: u64 = 30;
/// `Retry-After` sent when no token could be had for a passing reason (the token endpoint or
/// the minting authority could not be reached, or timed out).
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;

/// Request headers a proxy must not pass on to the API: the caller's credentials (replaced by
/// the bearer token), and hop-by-hop or platform headers that describe the caller's connection.
pub const UNFORWARDED_HEADERS: &[&str] = &[
    "authorization",
    "cookie",
    "cookie2",
    "expect",
    "forwarded",
    "true-client-ip",
    "x-original-url",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "host",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
];

/// Prefixes of request header names a proxy must not pass on (platform and forwarding headers).
pub const UNFORWARDED_PREFIXES: &[&str] = &["cf-", "x-forwarded-"];

/// Whether a proxy may pass this request header on (see [`UNFORWARDED_HEADERS`]).
pub fn is_forwardable_request_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    !(UNFORWARDED_HEADERS.contains(&name.as_str())
        || UNFORWARDED_PREFIXES.iter().any(|p| name.starts_with(p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_separators_and_path_parameters_are_smuggling() {
        for path in [
            "/..%2f..%2fadmin",
            "/..%2F..%2Fadmin",
            "/..%5c..%5cadmin",
            "/%2e%2e/admin",
            "/%2E./admin",
            "/%252e%252e/admin",
            "/%25252f",
            "/..;/admin",
            "/members;jsessionid=1",
        ] {
            assert!(smuggles_separator(path), "{path}");
        }
        for path in [
            "/customer_club/members",
            "/a%20b",
            "/100%25",
            "/%41%42",
            "/x/%2",
            "/",
        ] {
            assert!(!smuggles_separator(path), "{path}");
        }
    }

    #[test]
    fn api_paths_stay_inside_the_base() {
        let base = "https://api.autopay.io/v1";
        assert_eq!(
            join_api_path(base, "/c?x=1").unwrap(),
            "https://api.autopay.io/v1/c?x=1"
        );
        assert_eq!(
            join_api_path("https://api.autopay.io/", "/c").unwrap(),
            "https://api.autopay.io/c"
        );
        assert!(join_api_path(base, "https://evil.example/").is_err());
        assert!(join_api_path(base, "//evil.example/").is_err());
        assert!(join_api_path(base, "c").is_err());
        assert!(check_within_base(base, "https://api.autopay.io/v1/c").is_ok());
        assert!(check_within_base(base, "https://api.autopay.io/v1?q").is_ok());
        assert!(check_within_base(base, "https://api.autopay.io/v1").is_ok());
        assert!(check_within_base(base, "https://api.autopay.io/v1evil").is_err());
        assert!(check_within_base(base, "https://api.autopay.io/admin").is_err());
        assert!(check_within_base(base, "https://api.autopay.io.evil/v1/c").is_err());
    }

    #[test]
    fn gateway_maps_rate_limits_to_503_and_the_rest_to_502() {
        use crate::error::ServerError;
        let server = |status, retry_after| ServerError {
            status,
            error: None,
            description: None,
            retry_after,
        };
        assert_eq!(
            gateway_status(&Error::RateLimited(server(429, Some(7)))),
            (503, Some(7))
        );
        assert_eq!(
            gateway_status(&Error::RateLimited(server(429, None))),
            (503, Some(30))
        );
        assert_eq!(
            gateway_status(&Error::AccessDenied(server(401, None))),
            (502, None)
        );
        assert_eq!(gateway_status(&Error::Server(server(500, None))), (502, None));
        let timeout = Error::Timeout {
            host: "h".into(),
            after_ms: 1,
        };
        assert_eq!(gateway_status(&timeout), (503, Some(5)));
        // the mint budget spent: the seconds until the window allows a request again
        assert_eq!(
            gateway_status(&Error::MintBudgetExhausted { retry_after: 1_234 }),
            (503, Some(1_234))
        );
        let unavailable = Error::StoreUnavailable { reason: "r".into() };
        assert_eq!(gateway_status(&unavailable), (503, Some(5)));
        assert_eq!(gateway_status(&Error::config("token_url", "r")), (500, None));
    }

    #[test]
    fn caller_credentials_and_hop_headers_are_not_forwarded() {
        for h in [
            "Authorization",
            "cookie",
            "Host",
            "CF-Connecting-IP",
            "transfer-encoding",
            "X-Forwarded-For",
            "x-forwarded-port",
            "Expect",
            "X-Original-URL",
            "x-rewrite-url",
            "X-HTTP-Method-Override",
            "Forwarded",
            "True-Client-IP",
            "Cookie2",
        ] {
            assert!(!is_forwardable_request_header(h), "{h}");
        }
        for h in ["content-type", "accept", "x-request-id", "idempotency-key"] {
            assert!(is_forwardable_request_header(h), "{h}");
        }
    }

    /// An API that answers from a script of statuses; tokens are `t1`, `t2`, ….
    struct Scripted {
        statuses: Vec<u16>,
        tokens: u32,
        sent: Vec<String>,
        refused: Vec<String>,
        replayable: bool,
    }

    impl ApiCall for Scripted {
        type Response = u16;
        type Failure = ();
        async fn token(&mut self) -> Result<ApiToken, ()> {
            self.tokens += 1;
            Ok(ApiToken {
                token_type: "Bearer".into(),
                access_token: format!("t{}", self.tokens),
            })
        }
        async fn send(&mut self, token: &ApiToken) -> Result<(u16, u16), ()> {
            self.sent.push(token.access_token.clone());
            let status = self.statuses.remove(0);
            Ok((status, status))
        }
        async fn refused(&mut self, token: &str) -> bool {
            self.refused.push(token.to_owned());
            self.refused.len() < 3
        }
        async fn replayable(&mut self) -> bool {
            self.replayable
        }
    }

    fn scripted(statuses: &[u16], replayable: bool) -> Scripted {
        Scripted {
            statuses: statuses.to_vec(),
            tokens: 0,
            sent: vec![],
            refused: vec![],
            replayable,
        }
    }

    #[test]
    fn call_api_retries_once_after_a_401_with_a_new_token() {
        use futures::executor::block_on;
        let mut ok = scripted(&[200], true);
        let answer = block_on(call_api(&mut ok));
        assert_eq!(answer, Ok(200));
        assert_eq!((ok.sent.len(), ok.refused.len()), (1, 0));

        let mut retried = scripted(&[401, 200], true);
        let answer = block_on(call_api(&mut retried));
        assert_eq!(answer, Ok(200));
        assert_eq!(retried.sent, ["t1", "t2"]);
        assert_eq!(retried.refused, ["t1"]);

        let mut twice = scripted(&[401, 401], true);
        let answer = block_on(call_api(&mut twice));
        assert_eq!(answer, Ok(401));
        assert_eq!(twice.refused, ["t1", "t2"], "both refused tokens are dropped");

        let mut stream = scripted(&[401], false);
        let answer = block_on(call_api(&mut stream));
        assert_eq!(answer, Ok(401));
        assert_eq!((stream.sent.len(), stream.refused,), (1, vec!["t1".to_owned()]));
    }

    #[test]
    fn only_one_retry_after_a_401_with_a_replayable_body() {
        assert!(should_retry_api_call(401, 0, true));
        assert!(!should_retry_api_call(401, 1, true));
        assert!(!should_retry_api_call(401, 0, false));
        assert!(!should_retry_api_call(403, 0, true));
        assert!(!should_retry_api_call(200, 0, true));
    }
}
