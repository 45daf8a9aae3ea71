//! `private_key_jwt` (RFC 7523, OpenID Connect Core §9): the client's private key, checked once,
//! and the signed assertion each token request carries. Pure: the signature itself comes from a
//! [`Signer`](crate::Signer) (WebCrypto in the JS hosts), over the bytes this module lays out.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::base64;
use crate::error::{Error, field};
use crate::secret::ClientSecret;

/// `client_assertion_type` for a signed JWT (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How long an assertion is valid (`exp` − `iat`): long enough for one request and some clock
/// skew, short enough that a captured one is soon worthless.
pub const ASSERTION_LIFETIME_SECS: u64 = 120;

/// A JWS algorithm the JS hosts' WebCrypto can sign with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// RSASSA-PSS with SHA-384.
    Ps384,
    /// RSASSA-PSS with SHA-512.
    Ps512,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// ECDSA on P-384 with SHA-384.
    Es384,
    /// ECDSA on P-521 with SHA-512.
    Es512,
    /// Ed25519.
    EdDsa,
}

const ALGS: [SigningAlg; 10] = [
    SigningAlg::Rs256,
    SigningAlg::Rs384,
    SigningAlg::Rs512,
    SigningAlg::Ps256,
    SigningAlg::Ps384,
    SigningAlg::Ps512,
    SigningAlg::Es256,
    SigningAlg::Es384,
    SigningAlg::Es512,
    SigningAlg::EdDsa,
];

impl SigningAlg {
    /// The JWS name (`alg`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::Es512 => "ES512",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The algorithm named `name`, if it is one of these.
    pub fn parse(name: &str) -> Option<Self> {
        ALGS.into_iter().find(|a| a.name() == name)
    }

    /// The JWK key type it signs with: `RSA`, `EC` or `OKP`.
    pub fn kty(self) -> &'static str {
        match self {
            Self::Es256 | Self::Es384 | Self::Es512 => "EC",
            Self::EdDsa => "OKP",
            _ => "RSA",
        }
    }

    /// The curve, for EC and OKP keys.
    pub fn curve(self) -> Option<&'static str> {
        match self {
            Self::Es256 => Some("P-256"),
            Self::Es384 => Some("P-384"),
            Self::Es512 => Some("P-521"),
            Self::EdDsa => Some("Ed25519"),
            _ => None,
        }
    }

    /// The digest (WebCrypto's name), where the algorithm takes one.
    pub fn hash(self) -> Option<&'static str> {
        match self {
            Self::Rs256 | Self::Ps256 | Self::Es256 => Some("SHA-256"),
            Self::Rs384 | Self::Ps384 | Self::Es384 => Some("SHA-384"),
            Self::Rs512 | Self::Ps512 | Self::Es512 => Some("SHA-512"),
            Self::EdDsa => None,
        }
    }

    /// The algorithm a key of this type and curve signs with when none is named.
    fn for_key(kty: &str, crv: Option<&str>) -> Option<Self> {
        match (kty, crv) {
            ("RSA", _) => Some(Self::Rs256),
            ("EC", Some("P-256")) => Some(Self::Es256),
            ("EC", Some("P-384")) => Some(Self::Es384),
            ("EC", Some("P-521")) => Some(Self::Es512),
            ("OKP", Some("Ed25519")) => Some(Self::EdDsa),
            _ => None,
        }
    }
}

/// How the key is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFormat {
    /// A JSON Web Key ([`PrivateKey::jwk`] holds its key members as JSON).
    Jwk,
    /// PKCS#8 ([`PrivateKey::pkcs8_der`]).
    Pkcs8,
}

/// A private key for `private_key_jwt`, checked: its algorithm is known and fits the key.
/// `Debug` shows the algorithm and the key id, never the key.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKey {
    format: KeyFormat,
    /// The JWK's key members as compact JSON, or the PKCS#8 DER in base64: the key itself, which
    /// also keys the sealing of stored records (as a client secret does).
    material: ClientSecret,
    alg: SigningAlg,
    kid: Option<String>,
    /// The key's certificate, when given: its thumbprint, and the chain to send (`x5c`).
    certificate: Option<Certificate>,
}

/// An X.509 certificate of the key, as the assertion's header names it (Microsoft Entra ID's
/// certificate credentials): `x5t#S256`, and optionally the chain itself in `x5c`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Certificate {
    /// base64url of the SHA-256 of the first (leaf) certificate's DER.
    thumbprint: String,
    /// Each certificate's DER in standard base64, leaf first, when the chain is sent.
    x5c: Option<Vec<String>>,
}

/// The certificates of a PEM text (`-----BEGIN CERTIFICATE-----` blocks, leaf first), as DER.
pub(crate) fn certificates_der(pem: &str) -> Result<Vec<Vec<u8>>, Error> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let bad = |why: &str| Error::config(field::CERTIFICATE, why);
    let mut out = Vec::new();
    let mut rest = pem.trim();
    while !rest.is_empty() {
        let body = rest
            .strip_prefix(BEGIN)
            .ok_or_else(|| bad("must be PEM certificates (-----BEGIN CERTIFICATE-----), leaf first"))?;
        let (body, after) = body
            .split_once(END)
            .ok_or_else(|| bad("has a certificate without its -----END CERTIFICATE----- line"))?;
        let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::decode(&b64).ok_or_else(|| bad("has a PEM body that is not base64"))?;
        // a DER SEQUENCE, the shape of every X.509 certificate
        if der.len() < 64 || der[0] != 0x30 {
            return Err(bad("is not an X.509 certificate"));
        }
        out.push(der);
        rest = after.trim_start();
        if out.len() > 10 {
            return Err(bad("has more than 10 certificates"));
        }
    }
    if out.is_empty() {
        return Err(bad("must hold a certificate"));
    }
    Ok(out)
}

/// `x5t#S256` of a certificate (RFC 7515 §4.1.8): base64url of the SHA-256 of its DER.
pub fn x5t_s256(der: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    base64::url_encode(&Sha256::digest(der))
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("alg", &self.alg.name())
            .field("kid", &self.kid)
            .field("x5t#S256", &self.certificate.as_ref().map(|c| &c.thumbprint))
            .field("key", &"[redacted]")
            .finish()
    }
}

/// The JWK members that make up a key (public and private), in a fixed order; everything else
/// (`use`, `key_ops`, `alg`, `ext`, …) stays out of what is imported.
const KEY_MEMBERS: [&str; 12] = ["kty", "crv", "x", "y", "n", "e", "d", "p", "q", "dp", "dq", "qi"];

// DER of the AlgorithmIdentifier OIDs a PKCS#8 key starts with
const OID_RSA: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

fn key_error(reason: impl Into<String>) -> Error {
    Error::config(field::PRIVATE_KEY, reason)
}

/// The algorithm to use: the one named (`privateKeyAlg`, else the JWK's `alg`), which must fit
/// the key, or the key's own.
fn choose_alg(named: Option<&str>, from: &str, kty: &str, crv: Option<&str>) -> Result<SigningAlg, Error> {
    let Some(name) = named else {
        return SigningAlg::for_key(kty, crv).ok_or_else(|| {
            key_error("is of a type this client cannot sign with (RSA, EC P-256/384/521 or Ed25519)")
        });
    };
    let alg = SigningAlg::parse(name).ok_or_else(|| {
        Error::config(
            from,
            "must be one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA",
        )
    })?;
    let fits = alg.kty() == kty && (alg.curve().is_none() || alg.curve() == crv);
    if !fits {
        return Err(Error::config(
            from,
            format!("{} does not fit this key", alg.name()),
        ));
    }
    Ok(alg)
}

fn check_kid(kid: Option<&str>) -> Result<Option<String>, Error> {
    match kid {
        None => Ok(None),
        Some(k) if k.is_empty() || k.chars().any(char::is_control) => Err(Error::config(
            field::PRIVATE_KEY_ID,
            "must be a non-empty string without control characters",
        )),
        Some(k) => Ok(Some(k.to_owned())),
    }
}

impl PrivateKey {
    /// Reads a key written as a private JWK (JSON text) or as a PKCS#8 PEM block. `alg` names
    /// the JWS algorithm (else the JWK's `alg`, else the key's type decides); `kid` goes into
    /// the assertion's header (else the JWK's `kid`).
    pub fn parse(text: &str, alg: Option<&str>, kid: Option<&str>) -> Result<Self, Error> {
        let text = text.trim();
        if text.starts_with('{') {
            Self::from_jwk(text, alg, kid)
        } else if text.starts_with("-----BEGIN") {
            Self::from_pem(text, alg, kid)
        } else {
            Err(key_error(
                "must be a private JWK or a PKCS#8 PEM (-----BEGIN PRIVATE KEY-----)",
            ))
        }
    }

    fn from_jwk(json: &str, alg: Option<&str>, kid: Option<&str>) -> Result<Self, Error> {
        let jwk: Map<String, Value> = match serde_json::from_str(json) {
            Ok(Value::Object(m)) => m,
            _ => return Err(key_error("is not a JSON Web Key (a JSON object)")),
        };
        let text = |k: &str| jwk.get(k).and_then(Value::as_str);
        let kty = text("kty").ok_or_else(|| key_error("has no `kty`"))?;
        if text("d").is_none() {
            return Err(key_error(
                "is a public key: private_key_jwt signs with the private key (a JWK with `d`)",
            ));
        }
        let (named, from) = match (alg, text("alg")) {
            (Some(a), _) => (Some(a), field::PRIVATE_KEY_ALG),
            (None, Some(a)) => (Some(a), field::PRIVATE_KEY),
            (None, None) => (None, field::PRIVATE_KEY),
        };
        let alg = choose_alg(named, from, kty, text("crv"))?;
        // the key members as compact JSON, in a fixed order (strings: escaped by serde_json)
        let mut members = Vec::with_capacity(KEY_MEMBERS.len());
        for k in KEY_MEMBERS {
            match jwk.get(k) {
                Some(Value::String(v)) => {
                    members.push(format!(
                        "\"{k}\":{}",
                        serde_json::to_string(v).unwrap_or_default()
                    ));
                }
                None => {}
                Some(_) => return Err(key_error(format!("has a `{k}` that is not a string"))),
            }
        }
        let kid = check_kid(kid.or(text("kid")))?;
        Ok(Self {
            format: KeyFormat::Jwk,
            material: ClientSecret::new(format!("{{{}}}", members.join(","))),
            alg,
            kid,
            certificate: None,
        })
    }

    fn from_pem(pem: &str, alg: Option<&str>, kid: Option<&str>) -> Result<Self, Error> {
        const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
        const END: &str = "-----END PRIVATE KEY-----";
        let Some(body) = pem.strip_prefix(BEGIN).and_then(|r| r.strip_suffix(END)) else {
            let label = pem.lines().next().unwrap_or_default();
            return Err(key_error(if label.contains("PUBLIC") {
                "is a public key: private_key_jwt signs with the private key".to_owned()
            } else if label.contains("ENCRYPTED") {
                "is encrypted: give the key unencrypted (and keep it a secret)".to_owned()
            } else {
                "must be PKCS#8 (-----BEGIN PRIVATE KEY-----); convert with `openssl pkcs8 -topk8 -nocrypt`"
                    .to_owned()
            }));
        };
        let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::decode(&b64).ok_or_else(|| key_error("has a PEM body that is not base64"))?;
        let has = |oid: &[u8]| der.windows(oid.len()).take(64).any(|w| w == oid);
        let (kty, crv) = if has(OID_RSA) {
            ("RSA", None)
        } else if has(OID_EC) {
            let crv = [(OID_P256, "P-256"), (OID_P384, "P-384"), (OID_P521, "P-521")]
                .into_iter()
                .find(|(oid, _)| has(oid))
                .map(|(_, c)| c);
            ("EC", crv)
        } else if has(OID_ED25519) {
            ("OKP", Some("Ed25519"))
        } else {
            return Err(key_error(
                "is of a type this client cannot sign with (RSA, EC P-256/384/521 or Ed25519)",
            ));
        };
        let alg = choose_alg(alg, field::PRIVATE_KEY_ALG, kty, crv)?;
        Ok(Self {
            format: KeyFormat::Pkcs8,
            material: ClientSecret::new(b64),
            alg,
            kid: check_kid(kid)?,
            certificate: None,
        })
    }

    /// The same key with its X.509 certificate (PEM, leaf first, then any chain): every
    /// assertion's header names it by `x5t#S256`, and with `x5c` carries the chain too (what
    /// Microsoft Entra ID's certificate credentials use; its subject-name/issuer
    /// authentication needs `x5c`). The certificate is public; it is not checked against the
    /// key here — the token endpoint does that.
    pub fn with_certificate(mut self, pem: &str, x5c: bool) -> Result<Self, Error> {
        let ders = certificates_der(pem)?;
        self.certificate = Some(Certificate {
            thumbprint: x5t_s256(&ders[0]),
            x5c: x5c.then(|| ders.iter().map(|d| base64::encode(d)).collect()),
        });
        Ok(self)
    }

    /// The certificate's `x5t#S256`, when one was given.
    pub fn x5t_s256(&self) -> Option<&str> {
        self.certificate.as_ref().map(|c| c.thumbprint.as_str())
    }

    /// How the key is written.
    pub fn format(&self) -> KeyFormat {
        self.format
    }
    /// The JWS algorithm.
    pub fn alg(&self) -> SigningAlg {
        self.alg
    }
    /// The key id for the assertion's header.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
    /// The key's members as a JWK (JSON text): only for [`KeyFormat::Jwk`], and only to import
    /// the key for signing. **A secret.**
    pub fn jwk(&self) -> Option<&str> {
        (self.format == KeyFormat::Jwk).then(|| self.material.expose())
    }
    /// The PKCS#8 DER: only for [`KeyFormat::Pkcs8`], and only to import the key for signing.
    /// **A secret.**
    pub fn pkcs8_der(&self) -> Option<Vec<u8>> {
        (self.format == KeyFormat::Pkcs8)
            .then(|| base64::decode(self.material.expose()))
            .flatten()
    }
    /// The key as the secret that keys sealed records and the cache key's fingerprint.
    pub(crate) fn as_secret(&self) -> &ClientSecret {
        &self.material
    }
}

/// The part of an assertion that is signed: `base64url(header) . base64url(claims)`, for
/// `client_id` at `audience` (the token endpoint), issued at `now_ms`, with the unique `jti`.
pub fn assertion_signing_input(
    key: &PrivateKey,
    client_id: &str,
    audience: &str,
    now_ms: u64,
    jti: &str,
) -> String {
    let iat = now_ms / 1000;
    let header = Header {
        alg: key.alg.name(),
        typ: "JWT",
        kid: key.kid(),
        x5t_s256: key.x5t_s256(),
        x5c: key.certificate.as_ref().and_then(|c| c.x5c.as_deref()),
    };
    let claims = Claims {
        iss: client_id,
        sub: client_id,
        aud: audience,
        jti,
        iat,
        exp: iat + ASSERTION_LIFETIME_SECS,
    };
    // strings and integers only: cannot fail
    let part = |json: String| base64::url_encode(json.as_bytes());
    format!(
        "{}.{}",
        part(serde_json::to_string(&header).unwrap_or_default()),
        part(serde_json::to_string(&claims).unwrap_or_default())
    )
}

// Written typed: strings and integers only (no float formatter in the wasm).
#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
    #[serde(rename = "x5t#S256", skip_serializing_if = "Option::is_none")]
    x5t_s256: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x5c: Option<&'a [String]>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: &'a str,
    iat: u64,
    exp: u64,
}

/// The signed assertion: the signing input and the signature (for ECDSA, `r ‖ s` as WebCrypto
/// gives it, which is what JWS wants).
pub fn finish_assertion(signing_input: &str, signature: &[u8]) -> String {
    format!("{signing_input}.{}", base64::url_encode(signature))
}

/// A fresh `jti`: 16 random bytes, base64url.
pub fn fresh_jti() -> Option<String> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).ok()?;
    Some(base64::url_encode(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EC_JWK: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cLyMqQ0-LGH1cs0nOKFf2c","use":"sig","kid":"k1"}"#;

    #[test]
    fn jwk_algorithms_come_from_the_key_or_must_fit_it() {
        let k = PrivateKey::parse(EC_JWK, None, None).unwrap();
        assert_eq!(
            (k.alg(), k.kid(), k.format()),
            (SigningAlg::Es256, Some("k1"), KeyFormat::Jwk)
        );
        assert!(!k.jwk().unwrap().contains("use"), "only key members are kept");
        assert_eq!(
            PrivateKey::parse(EC_JWK, None, Some("k2")).unwrap().kid(),
            Some("k2")
        );
        let err = PrivateKey::parse(EC_JWK, Some("RS256"), None).unwrap_err();
        assert_eq!(err.field(), Some(field::PRIVATE_KEY_ALG));
        let err = PrivateKey::parse(EC_JWK, Some("HS256"), None).unwrap_err();
        assert_eq!(err.field(), Some(field::PRIVATE_KEY_ALG));
        let rsa = r#"{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB"}"#;
        assert_eq!(
            PrivateKey::parse(rsa, Some("PS384"), None).unwrap().alg(),
            SigningAlg::Ps384
        );
        assert_eq!(
            PrivateKey::parse(rsa, None, None).unwrap().alg(),
            SigningAlg::Rs256
        );
        let ed = r#"{"kty":"OKP","crv":"Ed25519","x":"AA","d":"AA","alg":"EdDSA"}"#;
        assert_eq!(
            PrivateKey::parse(ed, None, None).unwrap().alg(),
            SigningAlg::EdDsa
        );
    }

    #[test]
    fn public_and_unknown_keys_are_refused_naming_the_option_not_the_key() {
        let public = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2","y":"x_FEzRu9"}"#;
        let cases = [
            public,
            "{}",
            "not a key",
            "[1]",
            r#"{"kty":"EC","crv":"P-192","x":"a","y":"b","d":"secretvalue"}"#,
            r#"{"kty":"oct","k":"secretvalue","d":"secretvalue"}"#,
            r#"{"kty":"RSA","n":1,"e":"AQAB","d":"secretvalue"}"#,
            "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----",
            "-----BEGIN RSA PRIVATE KEY-----\nsecretvalue\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nsecretvalue\n-----END ENCRYPTED PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----",
        ];
        for text in cases {
            let err = PrivateKey::parse(text, None, None).unwrap_err();
            assert_eq!(err.code(), "invalid_config", "{text}");
            assert_eq!(err.field(), Some(field::PRIVATE_KEY), "{text}");
            assert!(!err.to_string().contains("secretvalue"), "{err}");
        }
        assert!(
            PrivateKey::parse(public, None, None)
                .unwrap_err()
                .to_string()
                .contains("public key")
        );
    }

    #[test]
    fn pkcs8_pem_is_recognised_by_its_algorithm_identifier() {
        // an Ed25519 PKCS#8 key (RFC 8410 §10.3)
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
        let k = PrivateKey::parse(pem, None, Some("ed")).unwrap();
        assert_eq!(
            (k.alg(), k.format(), k.kid()),
            (SigningAlg::EdDsa, KeyFormat::Pkcs8, Some("ed"))
        );
        assert_eq!(k.pkcs8_der().unwrap().len(), 48);
        assert!(!format!("{k:?}").contains("MC4C"));
        let err = PrivateKey::parse(pem, Some("ES256"), None).unwrap_err();
        assert_eq!(err.field(), Some(field::PRIVATE_KEY_ALG));
        let err = PrivateKey::parse(pem, None, Some("")).unwrap_err();
        assert_eq!(err.field(), Some(field::PRIVATE_KEY_ID));
    }

    #[test]
    fn assertion_claims_are_rfc_7523() {
        let k = PrivateKey::parse(EC_JWK, None, None).unwrap();
        let input = assertion_signing_input(&k, "cid", "https://as.example/token", 1_700_000_000_500, "j1");
        let (h, c) = input.split_once('.').unwrap();
        let header: Value = serde_json::from_slice(&base64::url_decode(h).unwrap()).unwrap();
        let claims: Value = serde_json::from_slice(&base64::url_decode(c).unwrap()).unwrap();
        assert_eq!(header, serde_json::json!({"alg":"ES256","typ":"JWT","kid":"k1"}));
        assert_eq!(
            claims,
            serde_json::json!({"iss":"cid","sub":"cid","aud":"https://as.example/token","jti":"j1",
                "iat":1_700_000_000u64,"exp":1_700_000_120u64})
        );
        assert_eq!(finish_assertion("a.b", &[0xfb, 0xff]), "a.b.-_8");
        let (a, b) = (fresh_jti().unwrap(), fresh_jti().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 22);
    }

    #[test]
    fn a_certificate_is_named_by_its_sha256_thumbprint_and_sent_with_x5c() {
        // made by `openssl req -x509`; its thumbprint by
        // `openssl x509 -outform DER | openssl dgst -sha256 -binary | base64url`
        let pem = include_str!("../tests/fixtures/entra-cert.pem");
        let key = PrivateKey::parse(EC_JWK, None, None).unwrap();
        let with = key.clone().with_certificate(pem, false).unwrap();
        assert_eq!(
            with.x5t_s256(),
            Some("S-Jx8obiTzhJSXnEYe82M2_B_f5Neo4CDcLjv_MFpiE")
        );
        let header = |k: &PrivateKey| {
            let input = assertion_signing_input(k, "cid", "https://login.example/token", 0, "j");
            let h = input.split('.').next().unwrap().to_owned();
            serde_json::from_slice::<serde_json::Value>(&base64::url_decode(&h).unwrap()).unwrap()
        };
        assert_eq!(
            header(&with)["x5t#S256"],
            "S-Jx8obiTzhJSXnEYe82M2_B_f5Neo4CDcLjv_MFpiE"
        );
        assert!(header(&with).get("x5c").is_none());
        assert!(
            header(&key).get("x5t#S256").is_none(),
            "none without a certificate"
        );
        // with x5c, the chain as given (standard base64 of each DER), leaf first
        let chain = format!("{pem}\n{pem}");
        let x5c = header(&key.clone().with_certificate(&chain, true).unwrap())["x5c"].clone();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert_eq!(x5c, serde_json::json!([body, body]));
        for bad in [
            "",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
            "not pem",
        ] {
            assert_eq!(
                key.clone().with_certificate(bad, false).unwrap_err().field(),
                Some(field::CERTIFICATE),
                "{bad}"
            );
        }
        let shown = format!("{with:?}");
        assert!(shown.contains("S-Jx8") && !shown.contains(&body[..40]));
    }
}
