//! Token requests with reqwest (rustls): never a redirect followed (the secret is in the
//! body), the answer read no further than [`MAX_TOKEN_RESPONSE_BYTES`].

use crate::mtls::ClientCertificate;
use crate::{
    Error, MAX_RESPONSE_HEADERS, MAX_TOKEN_RESPONSE_BYTES, TokenRequest, TokenResponse, Transport, field,
    url_host,
};

/// Sends token requests over one pooled reqwest client.
#[derive(Clone, Debug)]
pub struct ReqwestTransport {
    http: reqwest::Client,
}

impl ReqwestTransport {
    /// A transport with its own connection pool: rustls with the webpki roots, no redirects.
    pub fn new() -> Result<Self, Error> {
        Self::configured(None, &[])
    }

    /// A transport for `config`: presenting its client certificate on every connection when it
    /// has one (RFC 8705), and trusting the `roots` (PEM CA certificates: a private PKI's) as
    /// well as the webpki roots. A certificate or root rustls refuses is `invalid_config`.
    pub fn configured(certificate: Option<&ClientCertificate>, roots: &[String]) -> Result<Self, Error> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("autopay-auth/", env!("CARGO_PKG_VERSION")));
        if let Some(certificate) = certificate {
            let pem = certificate.identity_pem().ok_or_else(|| {
                Error::config(
                    field::CLIENT_CERTIFICATE,
                    "is held by a platform binding: give the certificate and its key to the native client",
                )
            })?;
            let identity = reqwest::Identity::from_pem(pem.as_bytes()).map_err(|_| {
                Error::config(
                    field::CLIENT_CERTIFICATE,
                    "could not be loaded with its key (PEM certificate, PKCS#8 key)",
                )
            })?;
            builder = builder.identity(identity);
        }
        for root in roots {
            let root = reqwest::Certificate::from_pem(root.as_bytes())
                .map_err(|_| Error::config(field::TLS_ROOT, "must be a PEM CA certificate"))?;
            builder = builder.add_root_certificate(root);
        }
        let http = builder.build().map_err(|e| {
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                why = format!("{why}: {s}");
                source = s.source();
            }
            Error::config(field::TOKEN_URL, format!("no HTTP client: {why}"))
        })?;
        Ok(Self { http })
    }

    /// The HTTP client token requests go through: with a client certificate, call the API
    /// through it too, so a certificate-bound token travels only with its certificate.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A transport over `http` (your own pool, proxy or roots). It should not follow
    /// redirects: a 3xx is then an invalid answer, never a second request with the secret.
    pub fn with_client(http: reqwest::Client) -> Self {
        Self { http }
    }
}

impl Transport for ReqwestTransport {
    async fn send(&self, request: TokenRequest, timeout_ms: u64) -> Result<TokenResponse, Error> {
        let host = url_host(&request.url).to_owned();
        let failed = |e: reqwest::Error| {
            if e.is_timeout() {
                Error::Timeout {
                    host: host.clone(),
                    after_ms: timeout_ms,
                }
            } else {
                // the kind of failure only: reqwest's text can quote the URL
                let kind = if e.is_connect() { "connect" } else { "request" };
                Error::Network {
                    host: host.clone(),
                    message: format!("the {kind} failed"),
                }
            }
        };
        let mut send = self
            .http
            .post(&request.url)
            .timeout(std::time::Duration::from_millis(timeout_ms))
            .header("content-type", request.content_type)
            .header("accept", "application/json")
            .body(request.body);
        for (name, value) in &request.headers {
            send = send.header(name.as_str(), value.as_str());
        }
        let mut resp = send.send().await.map_err(failed)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let headers = resp
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
            .take(MAX_RESPONSE_HEADERS)
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > MAX_TOKEN_RESPONSE_BYTES {
                return Err(Error::InvalidResponse {
                    status,
                    reason: "the answer is larger than 64 KiB".into(),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(TokenResponse {
            status,
            retry_after,
            body: String::from_utf8_lossy(&body).into_owned(),
            headers,
        })
    }
}
