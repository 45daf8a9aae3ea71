//! How a token is presented on an API call: the one hook every edge authorizes its calls
//! through — `auth.fetch` in the npm package, the Worker's proxy and the native client.

use crate::api::ApiToken;
use crate::dpop::{DPOP_HEADER, DPOP_SCHEME, Prover};
use crate::error::Error;
use crate::seams::Signer;
use crate::wire::{is_bearer_token, is_token_type};

/// The headers that present `access_token` (of type `token_type`, as the token endpoint sent
/// it) on a `method` call to `url`: `authorization: Bearer …` for a bearer token (RFC 6750 §2.1;
/// the type is matched in any case, the scheme written as RFC 6750 spells it); `authorization:
/// DPoP …` and `dpop: <proof>` for a DPoP-bound token (RFC 9449 §7.1), whose `proof` was made
/// for this method, URL and token ([`present`] makes it). A type this client cannot present is
/// `invalid_response`, and a DPoP-bound token without a proof `invalid_config`, before anything
/// is sent.
pub fn authorize(
    method: &str,
    url: &str,
    token_type: &str,
    access_token: &str,
    proof: Option<&str>,
) -> Result<Vec<(&'static str, String)>, Error> {
    let _ = (method, url);
    if !is_token_type(token_type) {
        return Err(unpresentable("the token type is not an authentication scheme"));
    }
    if !is_bearer_token(access_token) {
        return Err(unpresentable("the access token is not a token68"));
    }
    if token_type.eq_ignore_ascii_case("bearer") {
        return Ok(vec![("authorization", format!("Bearer {access_token}"))]);
    }
    if token_type.eq_ignore_ascii_case(DPOP_SCHEME) {
        let proof = proof.ok_or_else(|| {
            Error::config(
                crate::field::DPOP_KEY,
                "is required: the token endpoint issued a DPoP-bound token",
            )
        })?;
        return Ok(vec![
            ("authorization", format!("{DPOP_SCHEME} {access_token}")),
            (DPOP_HEADER, proof.to_owned()),
        ]);
    }
    Err(unpresentable(
        "the token endpoint issued a token type this client cannot present (Bearer or DPoP)",
    ))
}

/// [`authorize`], with the proof a DPoP-bound token needs made by `prover` at `now_ms` (a
/// bearer token needs none, whether or not the client has a DPoP key).
pub async fn present<G: Signer>(
    prover: Option<&Prover<G>>,
    method: &str,
    url: &str,
    token: &ApiToken,
    now_ms: u64,
) -> Result<Vec<(&'static str, String)>, Error> {
    let proof = match prover {
        Some(p) if token.token_type.eq_ignore_ascii_case(DPOP_SCHEME) => {
            Some(p.proof(method, url, Some(&token.access_token), now_ms).await?)
        }
        _ => None,
    };
    authorize(
        method,
        url,
        &token.token_type,
        &token.access_token,
        proof.as_deref(),
    )
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
                authorize("GET", "https://api.example/x", t, "abc", None).unwrap(),
                vec![("authorization", "Bearer abc".to_owned())]
            );
        }
    }

    #[test]
    fn other_types_are_refused_before_anything_is_sent() {
        for t in ["N_A", "mac", "", "Bearer x"] {
            let err = authorize("GET", "https://api.example/x", t, "abc", None).unwrap_err();
            assert_eq!(err.code(), "invalid_response", "{t}");
        }
        let err = authorize("GET", "https://api.example/x", "Bearer", "a\r\nb", None).unwrap_err();
        assert_eq!(err.code(), "invalid_response");
        let err = authorize("GET", "https://api.example/x", "DPoP", "abc", None).unwrap_err();
        assert_eq!(
            err.code(),
            "invalid_config",
            "a DPoP token never goes out as a bearer token"
        );
    }

    #[test]
    fn a_dpop_token_goes_with_its_proof_under_the_dpop_scheme() {
        for t in ["DPoP", "dpop"] {
            assert_eq!(
                authorize("GET", "https://api.example/x", t, "abc", Some("p.r.f")).unwrap(),
                vec![
                    ("authorization", "DPoP abc".to_owned()),
                    ("dpop", "p.r.f".to_owned())
                ]
            );
        }
    }
}
