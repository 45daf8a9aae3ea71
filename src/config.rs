//! What identifies a token: endpoint, client, audience, secret — validated once, with the cache
//! key derived from it.

use sha2::{Digest, Sha256};

use crate::error::{Error, field};
use crate::secret::ClientSecret;

/// The vendor's token endpoint.
pub const DEFAULT_TOKEN_URL: &str = "https://api-auth.autopay.io/oauth/token";
/// The only audience the vendor accepts (also the API's base URL).
pub const DEFAULT_AUDIENCE: &str = "https://api.autopay.io";
/// Where the Autopay API lives.
pub const DEFAULT_API_BASE_URL: &str = "https://api.autopay.io";
/// Bumped whenever the stored record or the key derivation changes shape.
pub const CACHE_SCHEMA: u32 = 2;

/// A validated client configuration. The secret inside stays redacted in `Debug`.
#[derive(Clone, Debug)]
pub struct Config {
    token_url: String,
    client_id: String,
    client_secret: ClientSecret,
    audience: String,
    cache_key: String,
}

impl Config {
    /// Validates the four values that decide which token is minted. `token_url` must be `https`
    /// (plain `http` only on a loopback host, for local emulators).
    pub fn new(
        token_url: &str,
        client_id: &str,
        client_secret: ClientSecret,
        audience: &str,
    ) -> Result<Self, Error> {
        check_url(field::TOKEN_URL, token_url)?;
        check_text(field::CLIENT_ID, client_id)?;
        if client_secret.expose().is_empty() {
            return Err(Error::config(field::CLIENT_SECRET, "must be a non-empty string"));
        }
        if client_secret.expose().chars().any(char::is_control) {
            return Err(Error::config(
                field::CLIENT_SECRET,
                "must not contain control characters",
            ));
        }
        check_text(field::AUDIENCE, audience)?;
        let cache_key = derive_cache_key(token_url, client_id, &client_secret, audience);
        Ok(Self {
            token_url: token_url.to_owned(),
            client_id: client_id.to_owned(),
            client_secret,
            audience: audience.to_owned(),
            cache_key,
        })
    }

    /// The token endpoint.
    pub fn token_url(&self) -> &str {
        &self.token_url
    }
    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
    /// The client secret (redacted in `Debug`).
    pub fn client_secret(&self) -> &ClientSecret {
        &self.client_secret
    }
    /// The audience.
    pub fn audience(&self) -> &str {
        &self.audience
    }
    /// The store key for this configuration's token: covers token URL, client id, audience, a
    /// fingerprint of the secret and the schema version; never contains the secret.
    pub fn cache_key(&self) -> &str {
        &self.cache_key
    }
}

fn derive_cache_key(token_url: &str, client_id: &str, secret: &ClientSecret, audience: &str) -> String {
    let secret_fingerprint = Sha256::digest(secret.expose().as_bytes());
    let mut h = Sha256::new();
    h.update(CACHE_SCHEMA.to_be_bytes());
    for part in [
        token_url.as_bytes(),
        client_id.as_bytes(),
        audience.as_bytes(),
        &secret_fingerprint,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    let digest = h.finalize();
    let mut key = format!("autopay-auth:v{CACHE_SCHEMA}:");
    for b in digest {
        key.push_str(&format!("{b:02x}"));
    }
    key
}

fn check_text(option: &str, value: &str) -> Result<(), Error> {
    if value.trim().is_empty() {
        return Err(Error::config(option, "must be a non-empty string"));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::config(option, "must not contain control characters"));
    }
    Ok(())
}

/// Checks that `url` is an absolute `https` URL (or `http` on a loopback host), without user
/// info, whitespace or fragment. `field` names the setting in the error.
pub fn check_url(field: &str, url: &str) -> Result<(), Error> {
    let rest = if let Some(r) = url.strip_prefix("https://") {
        r
    } else if let Some(r) = url.strip_prefix("http://") {
        let host = authority(r);
        let host = host.rsplit_once(':').map_or(host, |(h, p)| {
            if p.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        });
        if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            return Err(Error::config(
                field,
                "must use https (plain http only on a loopback host)",
            ));
        }
        r
    } else {
        return Err(Error::config(field, "must be an absolute https URL"));
    };
    let auth = authority(rest);
    if auth.is_empty() {
        return Err(Error::config(field, "has no host"));
    }
    if auth.contains('@') {
        return Err(Error::config(field, "must not carry credentials"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::config(field, "must not contain whitespace"));
    }
    if url.contains('#') {
        return Err(Error::config(field, "must not have a fragment"));
    }
    Ok(())
}

/// The host (and port) of an absolute URL, for error messages: never its path, query or
/// credentials.
pub fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let auth = authority(rest);
    auth.rsplit_once('@').map_or(auth, |(_, host)| host)
}

fn authority(after_scheme: &str) -> &str {
    let end = after_scheme.find(['/', '?', '#']).unwrap_or(after_scheme.len());
    &after_scheme[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str, id: &str, secret: &str, aud: &str) -> Result<Config, Error> {
        Config::new(url, id, ClientSecret::new(secret), aud)
    }

    #[test]
    fn cache_key_covers_every_input_and_hides_the_secret() {
        let base = cfg(DEFAULT_TOKEN_URL, "id", "s3cr3t-value", DEFAULT_AUDIENCE).unwrap();
        let key = base.cache_key();
        assert!(key.starts_with("autopay-auth:v2:"));
        assert!(!key.contains("s3cr3t"));
        assert!(!format!("{base:?}").contains("s3cr3t"));
        let others = [
            cfg(
                "https://other.example/oauth/token",
                "id",
                "s3cr3t-value",
                DEFAULT_AUDIENCE,
            ),
            cfg(DEFAULT_TOKEN_URL, "id2", "s3cr3t-value", DEFAULT_AUDIENCE),
            cfg(DEFAULT_TOKEN_URL, "id", "s3cr3t-value2", DEFAULT_AUDIENCE),
            cfg(DEFAULT_TOKEN_URL, "id", "s3cr3t-value", "https://other.example"),
        ];
        for o in others {
            assert_ne!(o.unwrap().cache_key(), key);
        }
        assert_eq!(
            cfg(DEFAULT_TOKEN_URL, "id", "s3cr3t-value", DEFAULT_AUDIENCE)
                .unwrap()
                .cache_key(),
            key
        );
    }

    #[test]
    fn bad_options_name_the_option_not_the_value() {
        let cases = [
            (cfg("ftp://x/token", "id", "s", "a"), field::TOKEN_URL),
            (cfg("http://example.com/token", "id", "s", "a"), field::TOKEN_URL),
            (
                cfg("https://user:pw@example.com/token", "id", "s", "a"),
                field::TOKEN_URL,
            ),
            (cfg("https:///token", "id", "s", "a"), field::TOKEN_URL),
            (cfg("https://x/token#frag", "id", "s", "a"), field::TOKEN_URL),
            (cfg(DEFAULT_TOKEN_URL, "", "s", "a"), field::CLIENT_ID),
            (cfg(DEFAULT_TOKEN_URL, "id\n", "s", "a"), field::CLIENT_ID),
            (cfg(DEFAULT_TOKEN_URL, "id", "", "a"), field::CLIENT_SECRET),
            (cfg(DEFAULT_TOKEN_URL, "id", "s", " "), field::AUDIENCE),
        ];
        for (result, name) in cases {
            let err = result.unwrap_err();
            assert_eq!(err.code(), "invalid_config");
            assert_eq!(err.field(), Some(name), "{err}");
        }
    }

    #[test]
    fn url_host_is_only_the_host() {
        assert_eq!(
            url_host("https://api-auth.autopay.io/oauth/token?x=1"),
            "api-auth.autopay.io"
        );
        assert_eq!(url_host("http://127.0.0.1:8080/t"), "127.0.0.1:8080");
        assert_eq!(url_host("https://u:p@h.example/t"), "h.example");
    }

    #[test]
    fn loopback_http_is_allowed_for_emulators() {
        for url in [
            "http://127.0.0.1:8080/oauth/token",
            "http://localhost/oauth/token",
            "http://[::1]:9/t",
        ] {
            assert!(check_url(field::TOKEN_URL, url).is_ok(), "{url}");
        }
    }
}
