//! How a token is presented on an API call: the one hook every edge authorizes its calls
//! through — `auth.fetch` in the npm package, the Worker's proxy and the native client.

use crate::error::Error;
use crate::wire::{is_bearer_token, is_token_type};

/// The headers that present `access_token` (of type `token_type`, as the token endpoint sent
/// it) on a `method` call to `url`: `authorization: Bearer …` for a bearer token (RFC 6750 §2.1;
/// the type is matched in any case, the scheme written as RFC 6750 spells it). The method and
/// URL are part of the seam for proofs of possession, which sign them. A type this client cannot
/// present is `invalid_response`, before anything is sent.
pub fn authorize(
    method: &str,
    url: &str,
    token_type: &str,
    access_token: &str,
) -> Result<Vec<(&'static str, String)>, Error> {
    let _ = (method, url);
    if !is_token_type(token_type) {
        return Err(unpresentable("the token type is not an authentication scheme"));
    }
    if token_type.eq_ignore_ascii_case("bearer") {
        if !is_bearer_token(access_token) {
            return Err(unpresentable("the access token is not a bearer token"));
        }
        return Ok(vec![("authorization", format!("Bearer {access_token}"))]);
    }
    Err(unpresentable(
        "the token endpoint issued a token type this client cannot present (only Bearer)",
    ))
}

fn unpresentable(reason: &str) -> Error {
    Error::InvalidResponse {
        status: 200,
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_in_any_case_is_written_as_rfc_6750_spells_it() {
        for t in ["Bearer", "bearer", "BEARER"] {
            assert_eq!(
                authorize("GET", "https://api.example/x", t, "abc").unwrap(),
                vec![("authorization", "Bearer abc".to_owned())]
            );
        }
    }

    #[test]
    fn other_types_are_refused_before_anything_is_sent() {
        for t in ["DPoP", "N_A", "mac", "", "Bearer x"] {
            let err = authorize("GET", "https://api.example/x", t, "abc").unwrap_err();
            assert_eq!(err.code(), "invalid_response", "{t}");
        }
        let err = authorize("GET", "https://api.example/x", "Bearer", "a\r\nb").unwrap_err();
        assert_eq!(err.code(), "invalid_response");
    }
}
