//! The Worker's JSON answers: OAuth-style `error` / `error_description` bodies.

use serde::Serialize;
use worker::{Response, Result};

use super::settings::{Problem, setting_name};
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

/// 401 for a missing or wrong caller key.
pub fn unauthorized() -> Result<Response> {
    let mut r = error(
        401,
        "unauthorized",
        "a valid caller key is required (Authorization: Bearer <key>)",
    )?;
    r.headers_mut().set("www-authenticate", "Bearer")?;
    Ok(r)
}

/// 502 / 503 (+ `Retry-After`) when no token could be had, from the error's report: Autopay's
/// `error` and `error_description` pass through with its status, its raw body never does.
pub fn token_failure(err: &Error) -> Result<Response> {
    let (status, retry_after) = gateway_status(err);
    let report = err.clone().renamed(setting_name).report();
    let mut r = json(
        status,
        &ErrorBody {
            error: report.error.as_deref().unwrap_or(&report.code),
            error_description: report.description.as_deref().unwrap_or(&report.message),
            status: report.status,
        },
    )?;
    if let Some(secs) = retry_after {
        r.headers_mut().set("retry-after", &secs.to_string())?;
    }
    Ok(r)
}
