//! Calls to the protected API: where a bearer token may be sent, and when a refused call is
//! retried. Shared by the npm package's `fetch` and the Worker's proxy.

use crate::error::Error;

/// The one status after which a call is retried, with a new token.
pub const API_UNAUTHORIZED: u16 = 401;

/// Joins an API path onto the API base URL: `base` + `path`, where `path` must start with `/`.
/// The result still has to be normalised by the platform's URL parser and checked with
/// [`check_within_base`], since dot segments can climb out of the base path.
pub fn join_api_path(base: &str, path: &str) -> Result<String, Error> {
    if !path.starts_with('/') || path.starts_with("//") {
        return Err(Error::InvalidArgument {
            reason: "path must start with a single `/` and is taken relative to apiBaseUrl".into(),
        });
    }
    if path.chars().any(|c| c.is_control() || c == ' ') {
        return Err(Error::InvalidArgument {
            reason: "path must not contain spaces or control characters".into(),
        });
    }
    Ok(format!("{}{}", base.trim_end_matches('/'), path))
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
        Err(Error::InvalidArgument {
            reason: "the request would leave apiBaseUrl; the token is only sent there".into(),
        })
    }
}

/// Whether an API answer with `status` on attempt `attempt` (0 = first) should be retried with
/// a new token: only a 401, only once, and only when the request body can be sent again.
pub fn should_retry_api_call(status: u16, attempt: u32, body_replayable: bool) -> bool {
    status == API_UNAUTHORIZED && attempt == 0 && body_replayable
}

/// How a gateway (the Worker's proxy and `/token`) answers when it could not get a token:
/// `503` with a `Retry-After` (seconds) when Autopay rate-limited us, `502` otherwise. The
/// body carries Autopay's `error` / `error_description`, never its raw body.
pub fn gateway_status(err: &Error) -> (u16, Option<u64>) {
    match err {
        Error::RateLimited(s) => (
            503,
            Some(s.retry_after.unwrap_or(DEFAULT_GATEWAY_RETRY_AFTER_SECS)),
        ),
        Error::InvalidConfig { .. } => (500, None),
        _ => (502, None),
    }
}

/// `Retry-After` sent when Autopay rate-limited us without saying for how long.
pub const DEFAULT_GATEWAY_RETRY_AFTER_SECS: u64 = 30;

/// Request headers a proxy must not pass on to the API: the caller's credentials (replaced by
/// the bearer token), and hop-by-hop or platform headers that describe the caller's connection.
pub fn is_forwardable_request_header(name: &str) -> bool {
    const DROP: &[&str] = &[
        "authorization",
        "cookie",
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
    let name = name.to_ascii_lowercase();
    !(DROP.contains(&name.as_str()) || name.starts_with("cf-"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(gateway_status(&timeout), (502, None));
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
        ] {
            assert!(!is_forwardable_request_header(h), "{h}");
        }
        for h in ["content-type", "accept", "x-request-id", "idempotency-key"] {
            assert!(is_forwardable_request_header(h), "{h}");
        }
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
