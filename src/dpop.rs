//! DPoP (RFC 9449): tokens bound to a key the client holds. Every token request and every API
//! call carries a fresh proof — a JWT signed with the key, naming the method and URL (`htm`,
//! `htu`), when (`iat`), a unique `jti`, the server's nonce when it gave one, and on API calls the
//! token's hash (`ath`). A stolen token is worthless without the key, and a captured proof only
//! fits its own request.
//!
//! One key per configuration, given by the user ([`crate::ConfigBuilder::dpop_key`]): every
//! instance of a fleet is given the same key, as it is given the same secret, so the one token the
//! fleet mints is usable by all of them. The key is never stored: it stays where the secret is
//! (the process's configuration), and the store holds only the token, sealed. The cache key
//! covers the key (a fingerprint), so instances given different keys never share a token.
//!
//! The proof is laid out here; the signature comes from a [`Signer`] (WebCrypto in the JS
//! hosts, RustCrypto natively).

use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::assertion::{KeyFormat, PrivateKey, SigningAlg, finish_assertion, fresh_jti};
use crate::error::{Error, field};
use crate::seams::Signer;
use crate::{TokenResponse, base64};

/// The request header that carries a proof.
pub const DPOP_HEADER: &str = "dpop";
/// The answer header that carries the server's nonce.
pub const NONCE_HEADER: &str = "dpop-nonce";
/// The error a server answers when it wants a proof with its nonce (RFC 9449 §8, §9).
pub const USE_DPOP_NONCE: &str = "use_dpop_nonce";
/// The token type of a DPoP-bound token, and the scheme it is presented with.
pub const DPOP_SCHEME: &str = "DPoP";
/// Servers whose nonces a client remembers at most (the least recently learned is forgotten).
pub const MAX_NONCES: usize = 32;
/// The longest nonce kept; a longer one is ignored.
const MAX_NONCE_LEN: usize = 512;

/// The public members of a JWK, in the order of its RFC 7638 thumbprint.
const PUBLIC_MEMBERS: [(&str, &[&str]); 3] = [
    ("EC", &["crv", "kty", "x", "y"]),
    ("RSA", &["e", "kty", "n"]),
    ("OKP", &["crv", "kty", "x"]),
];

/// The public JWK of a key (a JSON object) as compact JSON, its required members in thumbprint
/// order (RFC 7638 §3.2) — so the same text is both the proof's `jwk` and the input of
/// [`thumbprint`]. `None` when `jwk` lacks one of them. (Written by hand from strings: no JSON
/// value is serialised, which would pull a float formatter into the wasm.)
pub fn public_jwk(jwk: &Value) -> Option<String> {
    let kty = jwk.get("kty")?.as_str()?;
    let (_, members) = PUBLIC_MEMBERS.iter().find(|(k, _)| *k == kty)?;
    let mut parts = Vec::with_capacity(members.len());
    for m in *members {
        let value = serde_json::to_string(jwk.get(*m)?.as_str()?).ok()?;
        parts.push(format!("\"{m}\":{value}"));
    }
    Some(format!("{{{}}}", parts.join(",")))
}

/// The RFC 7638 thumbprint of a public JWK made by [`public_jwk`]: base64url(SHA-256) — what a
/// DPoP-bound token's `cnf.jkt` holds.
pub fn thumbprint(public_jwk: &str) -> String {
    base64::url_encode(&Sha256::digest(public_jwk.as_bytes()))
}

/// `htu`: the URL without its query and fragment (RFC 9449 §4.2).
pub fn htu(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

/// `ath`: base64url of the SHA-256 of the access token (RFC 9449 §4.2).
pub fn ath(access_token: &str) -> String {
    base64::url_encode(&Sha256::digest(access_token.as_bytes()))
}

/// The origin of `url` (`scheme://host[:port]`): nonces are kept per server.
fn origin(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    let end = url[after..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after + i);
    &url[..end]
}

/// Whether a token endpoint's answer asks for a proof with its nonce: `400` with
/// `"error": "use_dpop_nonce"` and a `DPoP-Nonce` header (RFC 9449 §8).
pub fn token_endpoint_wants_nonce(response: &TokenResponse) -> bool {
    response.status == 400
        && response.header(NONCE_HEADER).is_some()
        && serde_json::from_str::<Value>(&response.body)
            .ok()
            .and_then(|v| v.get("error")?.as_str().map(|e| e == USE_DPOP_NONCE))
            .unwrap_or(false)
}

/// Whether an API's answer asks for a proof with its nonce: `401` whose `WWW-Authenticate`
/// names `use_dpop_nonce`, with a `DPoP-Nonce` header (RFC 9449 §9).
pub fn api_wants_nonce(status: u16, www_authenticate: Option<&str>, nonce: Option<&str>) -> bool {
    status == 401 && nonce.is_some() && www_authenticate.is_some_and(|w| w.contains(USE_DPOP_NONCE))
}

/// The signed part of a proof: `base64url(header) . base64url(claims)`.
pub fn proof_signing_input(alg: SigningAlg, public_jwk: &str, claims: &ProofClaims<'_>) -> String {
    let header = format!(
        r#"{{"typ":"dpop+jwt","alg":"{}","jwk":{public_jwk}}}"#,
        alg.name()
    );
    // strings and integers only: cannot fail
    let claims = serde_json::to_string(claims).unwrap_or_default();
    format!(
        "{}.{}",
        base64::url_encode(header.as_bytes()),
        base64::url_encode(claims.as_bytes())
    )
}

/// What a proof claims (RFC 9449 §4.2).
#[derive(Serialize, Debug)]
pub struct ProofClaims<'a> {
    /// A fresh unique id.
    pub jti: &'a str,
    /// The request's method.
    pub htm: &'a str,
    /// The request's URL, without query and fragment.
    pub htu: &'a str,
    /// When the proof was made, in seconds.
    pub iat: u64,
    /// The server's nonce, when it gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<&'a str>,
    /// The hash of the access token, on API calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ath: Option<&'a str>,
}

/// A client's DPoP key with what proofs need: its public JWK (learned once), the nonces servers
/// gave (per origin), and the [`Signer`] that signs with it. `Debug` shows the algorithm only.
pub struct Prover<G> {
    key: PrivateKey,
    signer: G,
    public: Mutex<Option<String>>,
    nonces: Mutex<Vec<(String, String)>>,
}

impl<G> std::fmt::Debug for Prover<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prover")
            .field("alg", &self.key.alg().name())
            .field("key", &"[redacted]")
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<G: Signer> Prover<G> {
    /// Proves with `key`, signing with `signer`.
    pub fn new(key: PrivateKey, signer: G) -> Self {
        Self {
            key,
            signer,
            public: Mutex::default(),
            nonces: Mutex::default(),
        }
    }

    /// The key's public JWK (see [`public_jwk`]), read once: from the JWK's members, or from a
    /// PKCS#8 key by the signer.
    pub async fn public_jwk(&self) -> Result<String, Error> {
        if let Some(p) = lock(&self.public).clone() {
            return Ok(p);
        }
        let public = match self.key.format() {
            KeyFormat::Jwk => self
                .key
                .jwk()
                .and_then(|j| serde_json::from_str::<Value>(j).ok())
                .and_then(|v| public_jwk(&v))
                .ok_or_else(|| Error::config(field::DPOP_KEY, "has no public members to send"))?,
            KeyFormat::Pkcs8 => self.signer.public_jwk(&self.key).await.map_err(about_the_key)?,
        };
        *lock(&self.public) = Some(public.clone());
        Ok(public)
    }

    /// The key's thumbprint (`cnf.jkt` of the tokens it binds).
    pub async fn thumbprint(&self) -> Result<String, Error> {
        Ok(thumbprint(&self.public_jwk().await?))
    }

    /// A fresh proof for a `method` request to `url` at `now_ms`, with the nonce `url`'s server
    /// gave last; `access_token` (on API calls) is bound by its hash.
    pub async fn proof(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        now_ms: u64,
    ) -> Result<String, Error> {
        let public = self.public_jwk().await?;
        let jti = fresh_jti().ok_or_else(|| {
            Error::config(field::DPOP_KEY, "cannot be used: this platform has no randomness")
        })?;
        let nonce = self.nonce(url);
        let ath = access_token.map(ath);
        let claims = ProofClaims {
            jti: &jti,
            htm: method,
            htu: htu(url),
            iat: now_ms / 1000,
            nonce: nonce.as_deref(),
            ath: ath.as_deref(),
        };
        let input = proof_signing_input(self.key.alg(), &public, &claims);
        let signature = self
            .signer
            .sign(&self.key, input.as_bytes())
            .await
            .map_err(about_the_key)?;
        Ok(finish_assertion(&input, &signature))
    }
}

impl<G> Prover<G> {
    /// The nonce `url`'s server gave last, if any.
    pub fn nonce(&self, url: &str) -> Option<String> {
        let origin = origin(url);
        lock(&self.nonces)
            .iter()
            .find(|(o, _)| o == origin)
            .map(|(_, n)| n.clone())
    }

    /// Keeps the nonce `url`'s server sent (a `DPoP-Nonce` header on any answer): `true` when it
    /// is new, so a request refused for want of it is worth one more try.
    pub fn learn(&self, url: &str, nonce: Option<&str>) -> bool {
        let Some(nonce) = nonce.map(str::trim) else {
            return false;
        };
        // RFC 9449 §8.1: NQCHAR (%x21 / %x23-5B / %x5D-7E)
        let well_formed = !nonce.is_empty()
            && nonce.len() <= MAX_NONCE_LEN
            && nonce
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
        if !well_formed {
            return false;
        }
        let origin = origin(url);
        let mut nonces = lock(&self.nonces);
        if nonces.iter().any(|(o, n)| o == origin && n == nonce) {
            return false;
        }
        nonces.retain(|(o, _)| o != origin);
        if nonces.len() == MAX_NONCES {
            nonces.remove(0);
        }
        nonces.push((origin.to_owned(), nonce.to_owned()));
        true
    }
}

/// Checks a DPoP key: a private key of an asymmetric algorithm (RFC 9449 §4.2 forbids `none`
/// and MACs; every [`SigningAlg`] is asymmetric).
pub fn check_key(text: &str, alg: Option<&str>) -> Result<PrivateKey, Error> {
    let public_only = serde_json::from_str::<Value>(text)
        .ok()
        .is_some_and(|v| v.is_object() && v.get("d").is_none());
    if public_only || text.trim_start().starts_with("-----BEGIN PUBLIC KEY") {
        return Err(Error::config(
            field::DPOP_KEY,
            "is a public key: DPoP proofs are signed with the private key (a JWK with `d`, or a PKCS#8 PEM)",
        ));
    }
    PrivateKey::parse(text, alg, None).map_err(about_the_key)
}

/// A key refusal (which names the private key) said of the DPoP key.
pub fn about_the_key(e: Error) -> Error {
    match e {
        Error::InvalidConfig { field: f, reason } if f == field::PRIVATE_KEY => {
            Error::config(field::DPOP_KEY, reason)
        }
        Error::InvalidConfig { field: f, reason } if f == field::PRIVATE_KEY_ALG => {
            Error::config(field::DPOP_KEY_ALG, reason)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7638 §3.1's example key and thumbprint
    const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

    #[test]
    fn the_thumbprint_is_rfc_7638s() {
        let jwk = serde_json::json!({
            "kty": "RSA", "n": RFC7638_N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"
        });
        let public = public_jwk(&jwk).unwrap();
        assert!(public.starts_with(r#"{"e":"AQAB","kty":"RSA","n":"#), "{public}");
        assert_eq!(thumbprint(&public), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn private_members_never_reach_the_public_jwk() {
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "x": "X", "y": "Y", "d": "SECRET"
        });
        assert_eq!(
            public_jwk(&jwk).unwrap(),
            r#"{"crv":"P-256","kty":"EC","x":"X","y":"Y"}"#
        );
    }

    #[test]
    fn a_public_key_is_refused_as_the_dpop_key_by_name() {
        let public = r#"{"kty":"EC","crv":"P-256","x":"X","y":"Y"}"#;
        let e = check_key(public, None).unwrap_err();
        assert_eq!(e.field(), Some(field::DPOP_KEY));
        assert!(e.to_string().contains("public key"), "{e}");
        let e = check_key(EC, Some("RS256")).unwrap_err();
        assert_eq!(e.field(), Some(field::DPOP_KEY_ALG));
    }

    #[test]
    fn htu_drops_query_and_fragment_and_ath_hashes_the_token() {
        assert_eq!(htu("https://a.example/p/q?x=1#f"), "https://a.example/p/q");
        assert_eq!(htu("https://a.example/p#f"), "https://a.example/p");
        // RFC 9449 §7.1's example
        assert_eq!(
            ath("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }

    #[test]
    fn nonces_are_kept_per_server_and_only_a_new_one_is_news() {
        let p = Prover::new(check_key(EC, None).unwrap(), crate::NoSigner);
        assert!(p.learn("https://as.example/token", Some("n1")));
        assert!(
            !p.learn("https://as.example/other", Some("n1")),
            "same server, same nonce"
        );
        assert!(p.learn("https://api.example:8443/x?y", Some("n2")));
        assert_eq!(p.nonce("https://as.example/token?q").as_deref(), Some("n1"));
        assert_eq!(p.nonce("https://api.example:8443/").as_deref(), Some("n2"));
        assert_eq!(
            p.nonce("https://api.example/"),
            None,
            "another port is another server"
        );
        assert!(!p.learn("https://as.example/", Some("bad nonce\"")), "not NQCHAR");
        assert!(!p.learn("https://as.example/", None));
        for i in 0..MAX_NONCES + 5 {
            p.learn(&format!("https://s{i}.example/"), Some("n"));
        }
        assert_eq!(lock(&p.nonces).len(), MAX_NONCES);
    }

    #[test]
    fn a_token_endpoint_and_an_api_ask_for_a_nonce_each_in_their_way() {
        let answer = |status, body: &str, nonce: Option<&str>| TokenResponse {
            status,
            retry_after: None,
            body: body.to_owned(),
            headers: nonce
                .map(|n| vec![(NONCE_HEADER.to_owned(), n.to_owned())])
                .unwrap_or_default(),
        };
        let wants = r#"{"error":"use_dpop_nonce"}"#;
        assert!(token_endpoint_wants_nonce(&answer(400, wants, Some("n"))));
        assert!(!token_endpoint_wants_nonce(&answer(400, wants, None)));
        assert!(!token_endpoint_wants_nonce(&answer(401, wants, Some("n"))));
        assert!(!token_endpoint_wants_nonce(&answer(
            400,
            r#"{"error":"invalid_dpop_proof"}"#,
            Some("n")
        )));
        let challenge = r#"DPoP error="use_dpop_nonce", error_description="nonce""#;
        assert!(api_wants_nonce(401, Some(challenge), Some("n")));
        assert!(!api_wants_nonce(
            401,
            Some(r#"DPoP error="invalid_token""#),
            Some("n")
        ));
        assert!(!api_wants_nonce(401, Some(challenge), None));
        assert!(!api_wants_nonce(403, Some(challenge), Some("n")));
    }

    const EC: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cLyMqQ0-LGH1cs0nOKFf2c"}"#;

    #[test]
    fn a_proof_names_the_request_its_nonce_and_the_tokens_hash() {
        struct Fixed;
        impl Signer for Fixed {
            async fn sign(&self, _k: &PrivateKey, _i: &[u8]) -> Result<Vec<u8>, Error> {
                Ok(vec![1, 2, 3])
            }
        }
        let p = Prover::new(check_key(EC, None).unwrap(), Fixed);
        p.learn("https://api.example/", Some("srv-nonce"));
        let proof = futures::executor::block_on(p.proof(
            "GET",
            "https://api.example/v1/x?q=1",
            Some("tok"),
            1_700_000_000_999,
        ))
        .unwrap();
        let parts: Vec<&str> = proof.split('.').collect();
        let decode = |s: &str| -> Value { serde_json::from_slice(&base64::url_decode(s).unwrap()).unwrap() };
        let header = decode(parts[0]);
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["jwk"]["kty"], "EC");
        assert!(
            header["jwk"].get("d").is_none(),
            "no private member in the header"
        );
        let claims = decode(parts[1]);
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["htu"], "https://api.example/v1/x");
        assert_eq!(claims["iat"], 1_700_000_000);
        assert_eq!(claims["nonce"], "srv-nonce");
        assert_eq!(claims["ath"], ath("tok"));
        assert_eq!(claims["jti"].as_str().unwrap().len(), 22);
        assert_eq!(parts[2], base64::url_encode(&[1, 2, 3]));
        let again = futures::executor::block_on(p.proof("GET", "https://api.example/v1/x", None, 0)).unwrap();
        assert_ne!(
            decode(again.split('.').nth(1).unwrap())["jti"],
            claims["jti"],
            "a fresh jti"
        );
        assert!(decode(again.split('.').nth(1).unwrap()).get("ath").is_none());
    }
}
