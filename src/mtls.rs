//! Mutual TLS (RFC 8705): the client certificate a client presents on the TLS connection — as
//! its authentication (`tls_client_auth`, `self_signed_tls_client_auth`: only `client_id` in the
//! body) and so that the tokens minted are bound to it (`cnf.x5t#S256`). A host presents it from
//! its own TLS stack (natively: reqwest's identity); a host that cannot present one refuses the
//! configuration. The certificate's thumbprint is part of the cache key; the key is a secret.

use std::fmt;

use crate::assertion::{certificates_der, x5t_s256};
use crate::error::{Error, field};
use crate::secret::ClientSecret;

/// A client certificate: given as PEM (leaf first, then any chain) with its private key (PKCS#8
/// PEM), or held by the platform (a Cloudflare mTLS certificate binding) — then the host never
/// sees the key, the binding's name identifies the certificate, and a secret of its own seals
/// the stored records. `Debug` shows the thumbprint or the binding only.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// The chain as given; empty when the platform holds the certificate.
    chain_pem: String,
    /// The key (PKCS#8 PEM), or the platform certificate's sealing secret.
    key_pem: ClientSecret,
    /// `x5t#S256` of the leaf, or `binding:<name>` when the platform holds the certificate.
    thumbprint: String,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t#S256", &self.thumbprint)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl ClientCertificate {
    /// Checks a certificate chain and its key: the chain must be PEM certificates, the key a
    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). Whether they fit each other the TLS stack
    /// says when it loads them.
    pub fn parse(chain_pem: &str, key_pem: &str) -> Result<Self, Error> {
        let ders = certificates_der(chain_pem).map_err(|e| match e {
            Error::InvalidConfig { reason, .. } => Error::config(field::CLIENT_CERTIFICATE, reason),
            other => other,
        })?;
        let key = key_pem.trim();
        if !(key.starts_with("-----BEGIN PRIVATE KEY-----") && key.ends_with("-----END PRIVATE KEY-----")) {
            return Err(Error::config(
                field::CLIENT_CERTIFICATE_KEY,
                "must be a PKCS#8 PEM (-----BEGIN PRIVATE KEY-----); convert with `openssl pkcs8 -topk8 -nocrypt`",
            ));
        }
        Ok(Self {
            chain_pem: chain_pem.trim().to_owned(),
            key_pem: ClientSecret::new(key.to_owned()),
            thumbprint: x5t_s256(&ders[0]),
        })
    }

    /// A certificate the platform holds and presents (Cloudflare's mTLS certificate binding
    /// `binding`): the key never reaches this host, so stored records are sealed with `seal`, a
    /// secret of their own.
    pub fn on_platform(binding: &str, seal: ClientSecret) -> Result<Self, Error> {
        if seal.expose().len() < 32 {
            return Err(Error::config(
                field::CLIENT_CERTIFICATE_KEY,
                "must be a secret of at least 32 characters (it seals the stored tokens)",
            ));
        }
        Ok(Self {
            chain_pem: String::new(),
            key_pem: seal,
            thumbprint: format!("binding:{binding}"),
        })
    }

    /// The leaf certificate's `x5t#S256` (what a bound token's `cnf` holds), or
    /// `binding:<name>` for a certificate the platform holds: the certificate's identity in the
    /// cache key.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The chain and the key as one PEM text, for a TLS stack to load — `None` when the
    /// platform holds the certificate. **A secret.**
    pub fn identity_pem(&self) -> Option<String> {
        (!self.chain_pem.is_empty()).then(|| format!("{}\n{}\n", self.chain_pem, self.key_pem.expose()))
    }

    /// The key as the secret that keys sealed records (as a client secret does).
    pub(crate) fn as_secret(&self) -> &ClientSecret {
        &self.key_pem
    }
}
