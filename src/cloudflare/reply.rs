//! The Worker's JSON answers: OAuth-style `error` / `error_description` bodies.

use serde::Serialize;
use worker::{Response, Result};

use super::settings::Problem;
use crate::settings::variable_name;
use crate::{Error, gateway_status};

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
}

/// `{ error, error_description }` with `status`, never cached.
pub fn error(status: u16, error: &str, description: &str) -> Result<Response> {
    json(
        status,
        &ErrorBody {
            error,
            error_description: description,
            status: None,
        },
    )
}

/// Any serialisable body as JSON with `status`.
pub fn json<T: Serialize>(status: u16, body: &T) -> Result<Response> {
    let mut r = Response::from_json(body)?.with_status(status);
    r.headers_mut().set("cache-control", "no-store")?;
    Ok(r)
}

/// A JSON body already written, with `status`.
pub fn raw_json(status: u16, body: String) -> Result<Response> {
    let mut r = Response::ok(body)?.with_status(status);
    let headers = r.headers_mut();
    headers.set("content-type", "application/json")?;
    headers.set("cache-control", "no-store")?;
    Ok(r)
}

/// 500 naming each setting that is wrong.
pub fn misconfigured(problems: &[Problem]) -> Result<Response> {
    #[derive(Serialize)]
    struct Body<'a> {
        error: &'static str,
        error_description: &'static str,
        settings: &'a [Problem],
    }
    json(
        500,
        &Body {
            error: "misconfigured",
            error_description: "the Worker's configuration is incomplete or malformed",
            settings: problems,
        },
    )
}

/// `error` and `error_description` of the 401 for a missing or wrong caller key.
pub const UNAUTHORIZED: (&str, &str) = (
    "unauthorized",
    "a valid caller key is required (Authorization: Bearer <key>)",
);

/// `error` and `error_description` of the 502 when the Autopay API could not be reached.
pub const UNREACHABLE: (&str, &str) = ("upstream_unreachable", "the Autopay API could not be reached");

/// 401 for a missing or wrong caller key.
pub fn unauthorized() -> Result<Response> {
    let (code, description) = UNAUTHORIZED;
    let mut r = error(401, code, description)?;
    r.headers_mut().set("www-authenticate", "Bearer")?;
    Ok(r)
}

/// 403 for a caller key that may not use this tenant or call this path — the same answer for
/// a tenant that does not exist, so it tells nothing of which do.
pub fn forbidden() -> Result<Response> {
    error(
        403,
        "forbidden",
        "this key may not use this tenant or call this path",
    )
}

/// The answer when no token could be had: status, JSON body and `Retry-After` seconds. Autopay's
/// `error` and `error_description` pass through with its status, its raw body never does.
pub fn token_failure_parts(err: &Error) -> (u16, String, Option<u64>) {
    let (status, retry_after) = gateway_status(err);
    let report = err.clone().renamed(variable_name).report();
    let body = serde_json::to_string(&ErrorBody {
        error: report.error.as_deref().unwrap_or(&report.code),
        error_description: report.description.as_deref().unwrap_or(&report.message),
        status: report.status,
    })
    .unwrap_or_default();
    (status, body, retry_after)
}

/// 502 / 503 (+ `Retry-After`) when no token could be had (see [`token_failure_parts`]).
pub fn token_failure(err: &Error) -> Result<Response> {
    let (status, body, retry_after) = token_failure_parts(err);
    let mut r = raw_json(status, body)?;
    if let Some(secs) = retry_after {
        r.headers_mut().set("retry-after", &secs.to_string())?;
    }
    Ok(r)
}

/// The JSON body of [`error`], for answers built outside Rust.
pub fn error_body(error: &str, description: &str) -> String {
    serde_json::to_string(&ErrorBody {
        error,
        error_description: description,
        status: None,
    })
    .unwrap_or_default()
}
