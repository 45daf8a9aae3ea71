//! The one error type of the library, with a stable string `code` per cause.

use std::fmt;

/// What the token endpoint said when it refused: RFC 6749 §5.2 fields plus the HTTP status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError {
    /// HTTP status of the answer.
    pub status: u16,
    /// The server's `error` field, when the body had one.
    pub error: Option<String>,
    /// The server's `error_description` field, when the body had one.
    pub description: Option<String>,
    /// Seconds the server asked us to wait (`Retry-After`), when it said.
    pub retry_after: Option<u64>,
}

/// Every way getting a token can fail.
///
/// `Debug` and `Display` never contain the client secret or a raw response body.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// 401 or 403: the credentials were refused. Do not retry in a loop.
    AccessDenied(ServerError),
    /// Another 4xx: the request was malformed or refused (wrong audience, grant type, …).
    InvalidRequest(ServerError),
    /// 429: rate limited; see `retry_after`.
    RateLimited(ServerError),
    /// 5xx: the token service failed.
    Server(ServerError),
    /// The request did not reach the server or no answer came back.
    Network {
        /// What the platform said (never contains the secret: the request body is not echoed).
        message: String,
    },
    /// No answer within the configured timeout.
    Timeout {
        /// The timeout that ran out, in milliseconds.
        after_ms: u64,
    },
    /// The server answered, but not with what the contract promises. Nothing is cached.
    InvalidResponse {
        /// HTTP status of the answer.
        status: u16,
        /// Which rule the answer broke.
        reason: String,
    },
    /// An option given to the client is missing or malformed.
    InvalidConfig {
        /// The option's name, as the caller spelled it.
        option: String,
        /// What is wrong with it (never its value).
        reason: String,
    },
    /// An argument to a call was refused (for example a path that leaves the API base URL).
    InvalidArgument {
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    /// A stable string for programs: `access_denied`, `invalid_request`, `rate_limited`,
    /// `server_error`, `network`, `timeout`, `invalid_response`, `invalid_config`,
    /// `invalid_argument`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::AccessDenied(_) => "access_denied",
            Error::InvalidRequest(_) => "invalid_request",
            Error::RateLimited(_) => "rate_limited",
            Error::Server(_) => "server_error",
            Error::Network { .. } => "network",
            Error::Timeout { .. } => "timeout",
            Error::InvalidResponse { .. } => "invalid_response",
            Error::InvalidConfig { .. } => "invalid_config",
            Error::InvalidArgument { .. } => "invalid_argument",
        }
    }

    /// The server's answer, for the variants that have one.
    pub fn server(&self) -> Option<&ServerError> {
        match self {
            Error::AccessDenied(s) | Error::InvalidRequest(s) | Error::RateLimited(s) | Error::Server(s) => {
                Some(s)
            }
            _ => None,
        }
    }

    /// HTTP status of the token endpoint's answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::InvalidResponse { status, .. } => Some(*status),
            _ => self.server().map(|s| s.status),
        }
    }

    /// Seconds to wait before asking again, when the server said.
    pub fn retry_after(&self) -> Option<u64> {
        self.server().and_then(|s| s.retry_after)
    }

    /// The option named by an `InvalidConfig` error.
    pub fn option(&self) -> Option<&str> {
        match self {
            Error::InvalidConfig { option, .. } => Some(option),
            _ => None,
        }
    }

    pub(crate) fn config(option: &str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            option: option.to_owned(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::AccessDenied(s) | Error::InvalidRequest(s) | Error::RateLimited(s) | Error::Server(s) => {
                write!(f, "token endpoint answered HTTP {}", s.status)?;
                if let Some(e) = &s.error {
                    write!(f, ": {e}")?;
                }
                if let Some(d) = &s.description {
                    write!(f, " ({d})")?;
                }
                if let Some(r) = s.retry_after {
                    write!(f, "; retry after {r} s")?;
                }
                Ok(())
            }
            Error::Network { message } => write!(f, "token request failed: {message}"),
            Error::Timeout { after_ms } => write!(f, "token request timed out after {after_ms} ms"),
            Error::InvalidResponse { status, reason } => {
                write!(f, "invalid token response (HTTP {status}): {reason}")
            }
            Error::InvalidConfig { option, reason } => write!(f, "invalid option `{option}`: {reason}"),
            Error::InvalidArgument { reason } => write!(f, "invalid argument: {reason}"),
        }
    }
}

impl std::error::Error for Error {}
