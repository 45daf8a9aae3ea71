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
    fn only_one_retry_after_a_401_with_a_replayable_body() {
        assert!(should_retry_api_call(401, 0, true));
        assert!(!should_retry_api_call(401, 1, true));
        assert!(!should_retry_api_call(401, 0, false));
        assert!(!should_retry_api_call(403, 0, true));
        assert!(!should_retry_api_call(200, 0, true));
    }
}
