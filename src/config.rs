//! What identifies a token: endpoint, client, credential, and what is asked for (audience,
//! scope, resources, the request's shape) — validated once, with the cache key derived from it.

use sha2::{Digest, Sha256};

use crate::assertion::PrivateKey;
use crate::error::{Error, field};
use crate::mtls::ClientCertificate;
use crate::secret::ClientSecret;
use crate::wire::MAX_LIFETIME_SECS;

/// The vendor's token endpoint.
pub const DEFAULT_TOKEN_URL: &str = "https://api-auth.autopay.io/oauth/token";
/// The only audience the vendor accepts (also the API's base URL).
pub const DEFAULT_AUDIENCE: &str = "https://api.autopay.io";
/// Where the Autopay API lives.
pub const DEFAULT_API_BASE_URL: &str = "https://api.autopay.io";
/// The host of [`DEFAULT_TOKEN_URL`]: only Autopay's own request is ever sent there.
const AUTOPAY_TOKEN_HOST: &str = "api-auth.autopay.io";
/// Bumped whenever the stored record or the key derivation changes shape.
pub const CACHE_SCHEMA: u32 = 2;

/// How the token request's body is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json`: Autopay's contract, byte for byte (the default).
    #[default]
    Json,
    /// `application/x-www-form-urlencoded`, as RFC 6749 §4.4 has it (every standard server).
    Form,
}

impl BodyFormat {
    /// The option's value for this format.
    pub fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Form => "form",
        }
    }
}

/// How the client proves who it is (the `token_endpoint_auth_method` of RFC 7591).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// The id and secret in the body (the default, and Autopay's).
    #[default]
    SecretPost,
    /// HTTP Basic with the id and secret, each form-encoded first (RFC 6749 §2.3.1).
    SecretBasic,
    /// A fresh assertion signed with the client's private key (RFC 7523, OIDC Core §9).
    PrivateKeyJwt,
    /// The client certificate, issued by a CA the server trusts, on the TLS connection (RFC 8705
    /// §2.1); only `client_id` in the body.
    TlsClientAuth,
    /// A self-signed client certificate registered with the server (RFC 8705 §2.2).
    SelfSignedTlsClientAuth,
}

impl ClientAuth {
    /// The method's registered name.
    pub fn name(self) -> &'static str {
        match self {
            Self::SecretPost => "client_secret_post",
            Self::SecretBasic => "client_secret_basic",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::TlsClientAuth => "tls_client_auth",
            Self::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
        }
    }

    /// The method named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::SecretPost,
            Self::SecretBasic,
            Self::PrivateKeyJwt,
            Self::TlsClientAuth,
            Self::SelfSignedTlsClientAuth,
        ]
        .into_iter()
        .find(|m| m.name() == name)
    }

    /// Whether the client certificate is the authentication (RFC 8705 §2).
    pub fn is_mutual_tls(self) -> bool {
        matches!(self, Self::TlsClientAuth | Self::SelfSignedTlsClientAuth)
    }
}

/// What the client proves itself with.
#[derive(Clone, Debug)]
enum Credential {
    Secret(ClientSecret),
    Key(PrivateKey),
    /// The client certificate is the credential (its key keys the sealing).
    Certificate(ClientCertificate),
}

/// A validated client configuration. The secret or key inside stays redacted in `Debug`.
#[derive(Clone, Debug)]
pub struct Config {
    token_url: String,
    client_id: String,
    label: Option<std::sync::Arc<str>>,
    credential: Credential,
    ask: Ask,
    cache_key: String,
}

/// What a token request asks for and how, besides the endpoint and the credential.
#[derive(Clone, Debug)]
struct Ask {
    client_auth: ClientAuth,
    body: BodyFormat,
    audience: Option<String>,
    scope: Option<String>,
    resources: Vec<String>,
    /// Further token-request parameters, in order.
    params: Vec<(String, String)>,
    /// Further token-request headers, names lowercase, in order.
    headers: Vec<(String, String)>,
    default_expires_in: Option<u64>,
    /// The key DPoP-bound tokens are bound to (RFC 9449).
    dpop_key: Option<PrivateKey>,
    /// The client certificate presented on the TLS connection (RFC 8705).
    certificate: Option<ClientCertificate>,
}

impl Ask {
    /// What makes this request another vendor's, in words (never a value): `None` for
    /// Autopay's own request (JSON, the secret in the body, audience [`DEFAULT_AUDIENCE`], no
    /// scope or resource).
    fn not_autopays(&self) -> Option<&'static str> {
        Some(match self {
            Ask {
                client_auth: ClientAuth::PrivateKeyJwt,
                ..
            } => "signs with a private key",
            Ask {
                client_auth: ClientAuth::SecretBasic,
                ..
            } => "uses client_secret_basic",
            Ask {
                body: BodyFormat::Form,
                ..
            } => "sends a form body",
            Ask { audience: None, .. } => "sends no audience",
            Ask {
                audience: Some(a), ..
            } if a != DEFAULT_AUDIENCE => "sets another audience",
            Ask { scope: Some(_), .. } => "asks for a scope",
            Ask { resources, .. } if !resources.is_empty() => "asks for a resource",
            Ask { params, .. } if !params.is_empty() => "sends further parameters",
            Ask {
                dpop_key: Some(_), ..
            } => "binds its tokens with DPoP",
            Ask {
                certificate: Some(_), ..
            } => "presents a client certificate",
            Ask { client_auth, .. } if client_auth.is_mutual_tls() => {
                "authenticates with a client certificate"
            }
            _ => return None,
        })
    }
}

/// Whether `url` is on Autopay's token host (any case, any port, a trailing dot or not).
pub fn is_autopay_token_url(url: &str) -> bool {
    let host = url_host(url);
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    host.trim_end_matches('.')
        .eq_ignore_ascii_case(AUTOPAY_TOKEN_HOST)
}

/// Builds a [`Config`] for any client-credentials endpoint; [`ConfigBuilder::build`] checks it.
/// Unset, everything is Autopay's: JSON body, the secret in it, audience
/// [`DEFAULT_AUDIENCE`], no scope, no resource.
#[derive(Clone, Debug)]
pub struct ConfigBuilder {
    token_url: String,
    client_id: String,
    label: Option<String>,
    secret: Option<ClientSecret>,
    key: Option<PrivateKey>,
    ask: Ask,
}

impl ConfigBuilder {
    /// The client secret (for `client_secret_post` and `client_secret_basic`).
    pub fn client_secret(self, secret: ClientSecret) -> Self {
        self.credentials(Some(secret), None)
    }
    /// The private key (for `private_key_jwt`).
    pub fn private_key(self, key: PrivateKey) -> Self {
        self.credentials(None, Some(key))
    }
    /// The secret and the key the settings gave, either or both absent: [`Self::build`] says
    /// which one the client authentication needs, and refuses the other.
    pub fn credentials(mut self, secret: Option<ClientSecret>, key: Option<PrivateKey>) -> Self {
        self.secret = secret.or(self.secret);
        self.key = key.or(self.key);
        self
    }
    /// How the client authenticates.
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.ask.client_auth = auth;
        self
    }
    /// How the body is written.
    pub fn body(mut self, body: BodyFormat) -> Self {
        self.ask.body = body;
        self
    }
    /// The `audience` parameter; `None` sends none.
    pub fn audience(mut self, audience: Option<&str>) -> Self {
        self.ask.audience = audience.map(str::to_owned);
        self
    }
    /// The `scope` parameter (space-separated scope tokens).
    pub fn scope(mut self, scope: &str) -> Self {
        self.ask.scope = Some(scope.to_owned());
        self
    }
    /// One more `resource` parameter (RFC 8707: an absolute URI, no fragment).
    pub fn resource(mut self, resource: &str) -> Self {
        self.ask.resources.push(resource.to_owned());
        self
    }
    /// The client's label in events, logs and telemetry (`acme`, `billing-eu`): which credential
    /// set this is where a process holds many. 1 to 64 letters, digits and `._:-`. It names, it
    /// does not identify: it is not part of the cache key, and must not hold a secret.
    pub fn label(mut self, label: &str) -> Self {
        self.label = Some(label.to_owned());
        self
    }
    /// One more token-request parameter (a vendor's own: `organization`, `tenant`…), sent after
    /// the standard ones. The names this client writes itself (`client_id`, `client_secret`,
    /// `client_assertion`, `client_assertion_type`, `grant_type`, `audience`, `scope`,
    /// `resource`) are refused: set those with their own methods.
    pub fn param(mut self, name: &str, value: &str) -> Self {
        self.ask.params.push((name.to_owned(), value.to_owned()));
        self
    }
    /// One more header on every token request (a vendor's routing or tenant header). `Host`,
    /// `Authorization`, `Content-Type`, `Content-Length`, `Cookie` and hop-by-hop headers are
    /// refused: the client and the transport write those.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.ask
            .headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }
    /// The DPoP key (RFC 9449): every token request and API call then carries a proof signed
    /// with it, and the tokens minted are bound to it. Give every instance of a fleet the same
    /// key (as the same secret), so the one token the fleet mints is usable by all; it is part
    /// of the cache key (a fingerprint), and never stored.
    pub fn dpop_key(mut self, key: PrivateKey) -> Self {
        self.ask.dpop_key = Some(key);
        self
    }
    /// The client certificate to present on the TLS connection to the token endpoint (RFC
    /// 8705): the authentication with `tls_client_auth` or `self_signed_tls_client_auth`, and
    /// with any method the certificate the tokens are bound to (`cnf.x5t#S256`) — then call the
    /// API through the same certificate. Its thumbprint is part of the cache key.
    pub fn client_certificate(mut self, certificate: ClientCertificate) -> Self {
        self.ask.certificate = Some(certificate);
        self
    }
    /// The lifetime, in seconds, to assume when a success has no `expires_in` (without it such
    /// an answer is `invalid_response`: a token is never cached forever).
    pub fn default_expires_in(mut self, secs: u64) -> Self {
        self.ask.default_expires_in = Some(secs);
        self
    }

    /// Checks everything: each refusal is `invalid_config` naming the setting, never its value.
    /// Autopay's token endpoint (the edges' default) is sent only Autopay's own request: any
    /// other shape is another vendor's, and its credentials never go to Autopay.
    pub fn build(self) -> Result<Config, Error> {
        check_url(field::TOKEN_URL, &self.token_url)?;
        check_text(field::CLIENT_ID, &self.client_id)?;
        let ask = self.ask;
        let credential = match (ask.client_auth, self.secret, self.key) {
            (auth, None, None) if auth.is_mutual_tls() => match &ask.certificate {
                Some(c) => Credential::Certificate(c.clone()),
                None => {
                    return Err(Error::config(
                        field::CLIENT_CERTIFICATE,
                        format!("is required with {}", auth.name()),
                    ));
                }
            },
            (auth, Some(_), _) if auth.is_mutual_tls() => {
                return Err(Error::config(
                    field::CLIENT_SECRET,
                    format!(
                        "is not used with {} (the certificate authenticates): remove it",
                        auth.name()
                    ),
                ));
            }
            (ClientAuth::PrivateKeyJwt, None, Some(key)) => Credential::Key(key),
            (ClientAuth::PrivateKeyJwt, Some(_), _) => {
                return Err(Error::config(
                    field::CLIENT_SECRET,
                    "is not used with private_key_jwt (the private key signs instead): remove it",
                ));
            }
            (ClientAuth::PrivateKeyJwt, None, None) => {
                return Err(Error::config(
                    field::PRIVATE_KEY,
                    "is required with private_key_jwt",
                ));
            }
            (_, _, Some(_)) => {
                return Err(Error::config(
                    field::PRIVATE_KEY,
                    "is only used with private_key_jwt (set clientAuth to it, or remove the key)",
                ));
            }
            (auth, None, None) => {
                return Err(Error::config(
                    field::CLIENT_SECRET,
                    format!("is required with {}", auth.name()),
                ));
            }
            (_, Some(secret), None) => {
                if secret.expose().is_empty() {
                    return Err(Error::config(field::CLIENT_SECRET, "must be a non-empty string"));
                }
                if secret.expose().chars().any(char::is_control) {
                    return Err(Error::config(
                        field::CLIENT_SECRET,
                        "must not contain control characters",
                    ));
                }
                Credential::Secret(secret)
            }
        };
        if let Some(audience) = &ask.audience {
            check_text(field::AUDIENCE, audience)?;
        }
        if let Some(scope) = &ask.scope {
            check_scope(scope)?;
        }
        for resource in &ask.resources {
            check_resource(resource)?;
        }
        for (name, value) in &ask.params {
            check_param(name, value)?;
        }
        for (name, value) in &ask.headers {
            check_header(name, value)?;
        }
        if let Some(secs) = ask.default_expires_in
            && !(1..=MAX_LIFETIME_SECS).contains(&secs)
        {
            return Err(Error::config(
                field::DEFAULT_EXPIRES_IN,
                format!("must be a whole number of seconds from 1 to {MAX_LIFETIME_SECS}"),
            ));
        }
        if is_autopay_token_url(&self.token_url)
            && let Some(foreign) = ask.not_autopays()
        {
            return Err(Error::config(
                field::TOKEN_URL,
                format!(
                    "must be your token endpoint: this configuration {foreign}, so it is not \
                     Autopay's, and Autopay's token endpoint (the default) is sent only Autopay's \
                     own request"
                ),
            ));
        }
        if let Some(label) = &self.label {
            check_label(label)?;
        }
        let mut config = Config {
            token_url: self.token_url,
            client_id: self.client_id,
            label: self.label.map(std::sync::Arc::from),
            credential,
            ask,
            cache_key: String::new(),
        };
        config.cache_key = derive_cache_key(&config);
        Ok(config)
    }
}

impl Config {
    /// Autopay's configuration: validates the four values that decide which token is minted.
    /// `token_url` must be `https` (plain `http` only on a loopback host, for local emulators).
    pub fn new(
        token_url: &str,
        client_id: &str,
        client_secret: ClientSecret,
        audience: &str,
    ) -> Result<Self, Error> {
        Self::builder(token_url, client_id)
            .client_secret(client_secret)
            .audience(Some(audience))
            .build()
    }

    /// A configuration for any endpoint, set up step by step.
    pub fn builder(token_url: &str, client_id: &str) -> ConfigBuilder {
        ConfigBuilder {
            token_url: token_url.to_owned(),
            client_id: client_id.to_owned(),
            label: None,
            secret: None,
            key: None,
            ask: Ask {
                client_auth: ClientAuth::default(),
                body: BodyFormat::default(),
                audience: Some(DEFAULT_AUDIENCE.to_owned()),
                scope: None,
                resources: Vec::new(),
                params: Vec::new(),
                headers: Vec::new(),
                default_expires_in: None,
                dpop_key: None,
                certificate: None,
            },
        }
    }

    /// The token endpoint.
    pub fn token_url(&self) -> &str {
        &self.token_url
    }
    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
    /// The client's label, when one was given.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }
    /// The label as events carry it.
    pub(crate) fn label_shared(&self) -> Option<std::sync::Arc<str>> {
        self.label.clone()
    }
    /// The client secret (redacted in `Debug`), unless the client signs with a key.
    pub fn client_secret(&self) -> Option<&ClientSecret> {
        match &self.credential {
            Credential::Secret(s) => Some(s),
            Credential::Key(_) | Credential::Certificate(_) => None,
        }
    }
    /// The private key, for `private_key_jwt`.
    pub fn private_key(&self) -> Option<&PrivateKey> {
        match &self.credential {
            Credential::Key(k) => Some(k),
            Credential::Secret(_) | Credential::Certificate(_) => None,
        }
    }
    /// What keys the sealing of stored records: the client secret, the private key, or the
    /// client certificate's key.
    pub fn sealing_secret(&self) -> &ClientSecret {
        match &self.credential {
            Credential::Secret(s) => s,
            Credential::Key(k) => k.as_secret(),
            Credential::Certificate(c) => c.as_secret(),
        }
    }

    /// The client certificate, when one is presented (RFC 8705).
    pub fn client_certificate(&self) -> Option<&ClientCertificate> {
        self.ask.certificate.as_ref()
    }
    /// How the client authenticates.
    pub fn client_auth(&self) -> ClientAuth {
        self.ask.client_auth
    }
    /// How the body is written.
    pub fn body(&self) -> BodyFormat {
        self.ask.body
    }
    /// The audience, if one is sent.
    pub fn audience(&self) -> Option<&str> {
        self.ask.audience.as_deref()
    }
    /// The scope, if one is asked for.
    pub fn scope(&self) -> Option<&str> {
        self.ask.scope.as_deref()
    }
    /// The resource indicators, one `resource` parameter each.
    pub fn resources(&self) -> &[String] {
        &self.ask.resources
    }
    /// Further token-request parameters, in order.
    pub fn params(&self) -> &[(String, String)] {
        &self.ask.params
    }
    /// Further token-request headers, names lowercase, in order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.ask.headers
    }
    /// The lifetime assumed when a success has no `expires_in`.
    pub fn default_expires_in(&self) -> Option<u64> {
        self.ask.default_expires_in
    }
    /// Whether this is Autopay's request exactly (JSON, the secret in the body, an audience, no
    /// scope or resource).
    fn is_autopay_shaped(&self) -> bool {
        let a = &self.ask;
        a.body == BodyFormat::Json
            && a.client_auth == ClientAuth::SecretPost
            && a.audience.is_some()
            && a.scope.is_none()
            && a.resources.is_empty()
            && a.params.is_empty()
            && a.headers.is_empty()
            && a.dpop_key.is_none()
            && a.certificate.is_none()
    }

    /// The DPoP key, when tokens are bound with DPoP.
    pub fn dpop_key(&self) -> Option<&PrivateKey> {
        self.ask.dpop_key.as_ref()
    }
    /// The store key for this configuration's token: covers every parameter that changes the
    /// token (token URL, client id, audience, scope, resources, the body's form, the client
    /// authentication, a fingerprint of the secret or key) and the schema version; never
    /// contains a secret. Two clients that differ in any of these never share a record, a lock
    /// or a flight.
    pub fn cache_key(&self) -> &str {
        &self.cache_key
    }
}

fn derive_cache_key(config: &Config) -> String {
    let credential_fingerprint = Sha256::digest(config.sealing_secret().expose().as_bytes());
    let mut parts: Vec<&[u8]> = vec![
        config.token_url.as_bytes(),
        config.client_id.as_bytes(),
        config.audience().unwrap_or_default().as_bytes(),
        &credential_fingerprint,
    ];
    // Autopay's request keeps the key it always had; every other shape adds what it sends
    // (length-prefixed, so no two shapes can run together)
    let resources = config.resources().len().to_string();
    let mut counts = [String::new(), String::new()];
    let dpop_fingerprint: Vec<u8>;
    if !config.is_autopay_shaped() {
        parts.extend([
            b"request".as_slice(),
            config.body().name().as_bytes(),
            config.client_auth().name().as_bytes(),
            if config.audience().is_some() {
                b"audience"
            } else {
                b"no audience"
            },
            config.scope().unwrap_or_default().as_bytes(),
            resources.as_bytes(),
        ]);
        parts.extend(config.resources().iter().map(|r| r.as_bytes()));
        // every further parameter and header, counted, each name and value its own part (none:
        // nothing added, so every key made before these existed stays what it was)
        if !(config.params().is_empty() && config.headers().is_empty()) {
            for (list, count) in [config.params(), config.headers()]
                .into_iter()
                .zip(counts.iter_mut())
            {
                *count = list.len().to_string();
            }
            for (list, count) in [config.params(), config.headers()].into_iter().zip(&counts) {
                parts.push(count.as_bytes());
                parts.extend(list.iter().flat_map(|(k, v)| [k.as_bytes(), v.as_bytes()]));
            }
        }
        // a client certificate (none: nothing added): tokens bound to another are another's
        if let Some(certificate) = config.client_certificate() {
            parts.extend([b"mtls".as_slice(), certificate.thumbprint().as_bytes()]);
        }
        // a DPoP key (none: nothing added): tokens bound to another key are another's
        if let Some(key) = config.dpop_key() {
            dpop_fingerprint = Sha256::digest(key.as_secret().expose().as_bytes()).to_vec();
            parts.extend([b"dpop".as_slice(), dpop_fingerprint.as_slice()]);
        }
    }
    let mut h = Sha256::new();
    h.update(CACHE_SCHEMA.to_be_bytes());
    for part in parts {
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

/// RFC 6749 §3.3: scope tokens of `%x21 / %x23-5B / %x5D-7E`, separated by single spaces.
fn check_scope(scope: &str) -> Result<(), Error> {
    let token_ok = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
    };
    if scope.split(' ').all(token_ok) {
        Ok(())
    } else {
        Err(Error::config(
            field::SCOPE,
            "must be scope tokens separated by single spaces (RFC 6749 §3.3: printable ASCII, no quote or backslash)",
        ))
    }
}

/// RFC 8707 §2: an absolute URI without a fragment.
fn check_resource(resource: &str) -> Result<(), Error> {
    let scheme_ok = resource.split_once(':').is_some_and(|(scheme, rest)| {
        !rest.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    if !scheme_ok || resource.contains('#') || resource.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::config(
            field::RESOURCE,
            "must be absolute URIs without a fragment (RFC 8707)",
        ));
    }
    Ok(())
}

/// Parameter names the client writes itself.
const RESERVED_PARAMS: &[&str] = &[
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "grant_type",
    "audience",
    "scope",
    "resource",
];

/// Header names the client or the transport writes (and hop-by-hop ones).
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "authorization",
    "content-type",
    "content-length",
    "cookie",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "expect",
];

/// 1 to 64 of `A-Za-z0-9._:-`: safe in a log line, a metric attribute and a URL path.
pub(crate) fn check_label(label: &str) -> Result<(), Error> {
    let ok = (1..=64).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::config(
            field::LABEL,
            "must be 1 to 64 letters, digits, `.`, `_`, `:` or `-`",
        ))
    }
}

fn check_param(name: &str, value: &str) -> Result<(), Error> {
    check_text(field::TOKEN_PARAMS, name)?;
    if RESERVED_PARAMS.contains(&name) {
        return Err(Error::config(
            field::TOKEN_PARAMS,
            format!("must not set `{name}`: the client writes it (use its own setting)"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::config(
            field::TOKEN_PARAMS,
            "must not contain control characters",
        ));
    }
    Ok(())
}

fn check_header(name: &str, value: &str) -> Result<(), Error> {
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Err(Error::config(
            field::TOKEN_HEADERS,
            "must be HTTP header names (RFC 9110 tokens)",
        ));
    }
    if RESERVED_HEADERS.contains(&name) {
        return Err(Error::config(
            field::TOKEN_HEADERS,
            format!("must not set `{name}`: the client or the transport writes it"),
        ));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(Error::config(
            field::TOKEN_HEADERS,
            "must not contain control characters",
        ));
    }
    Ok(())
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
            cfg(
                "https://other.example/oauth/token",
                "id",
                "s3cr3t-value",
                "https://other.example",
            ),
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

    fn jwk_key() -> PrivateKey {
        PrivateKey::parse(
            r#"{"kty":"EC","crv":"P-256","x":"AA","y":"AA","d":"c2VjcmV0LWtleQ"}"#,
            None,
            None,
        )
        .unwrap()
    }

    fn any(url: &str) -> ConfigBuilder {
        Config::builder(url, "id").client_secret(ClientSecret::new("s3cr3t-value"))
    }

    #[test]
    fn autopay_keeps_its_key_and_every_other_parameter_changes_it() {
        let autopay = cfg(DEFAULT_TOKEN_URL, "id", "s3cr3t-value", DEFAULT_AUDIENCE).unwrap();
        // the key of 0.2.0-dev before other endpoints were spoken: upgrading mints nothing
        assert_eq!(
            autopay.cache_key(),
            "autopay-auth:v2:356948e5370517d292f4d993236c1b8b302bddff85303e59fdcbe541b92f97c5"
        );
        let url = "https://as.example/token";
        // another vendor's key as it was before further parameters and headers existed
        // (computed by that version): a configuration without them keeps it
        let form = any(url).body(BodyFormat::Form).scope("read").build().unwrap();
        assert_eq!(
            form.cache_key(),
            "autopay-auth:v2:8fb036b3df0392f42debb9c8a3364284fb4c113bd1dea4ad0977ba30dbff528f"
        );
        let variants = [
            any(url),
            any(url).body(BodyFormat::Form),
            any(url).client_auth(ClientAuth::SecretBasic),
            any(url).audience(None),
            any(url).scope("read"),
            any(url).scope("write"),
            any(url).scope("read write"),
            any(url).resource("https://a.example"),
            any(url).resource("https://b.example"),
            any(url)
                .resource("https://a.example")
                .resource("https://b.example"),
            any(url).scope("https://a.example"),
            Config::builder(url, "id")
                .client_auth(ClientAuth::PrivateKeyJwt)
                .private_key(jwk_key()),
        ];
        let keys: Vec<String> = variants
            .into_iter()
            .map(|b| b.build().unwrap().cache_key().to_owned())
            .collect();
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(
            any(url).scope("read").build().unwrap().cache_key(),
            keys[4],
            "stable"
        );
        assert_eq!(
            any(url).default_expires_in(60).build().unwrap().cache_key(),
            keys[0],
            "an assumed lifetime does not change the token"
        );
    }

    #[test]
    fn contradictory_credentials_name_the_option() {
        let url = "https://as.example/token";
        let jwt = || Config::builder(url, "id").client_auth(ClientAuth::PrivateKeyJwt);
        let cases = [
            (jwt(), field::PRIVATE_KEY),
            (
                jwt().private_key(jwk_key()).client_secret(ClientSecret::new("s")),
                field::CLIENT_SECRET,
            ),
            (any(url).private_key(jwk_key()), field::PRIVATE_KEY),
            (
                Config::builder(url, "id").client_auth(ClientAuth::SecretBasic),
                field::CLIENT_SECRET,
            ),
            (any(url).scope("a  b"), field::SCOPE),
            (any(url).scope("a\"b"), field::SCOPE),
            (any(url).scope(""), field::SCOPE),
            (any(url).resource("api.example"), field::RESOURCE),
            (any(url).resource("https://a.example/#f"), field::RESOURCE),
            (any(url).resource("https://a.example/ x"), field::RESOURCE),
            (any(url).default_expires_in(0), field::DEFAULT_EXPIRES_IN),
            (
                any(url).default_expires_in(MAX_LIFETIME_SECS + 1),
                field::DEFAULT_EXPIRES_IN,
            ),
            (any(url).audience(Some("")), field::AUDIENCE),
        ];
        for (builder, name) in cases {
            let err = builder.build().unwrap_err();
            assert_eq!((err.code(), err.field()), ("invalid_config", Some(name)), "{err}");
        }
        let signed = jwt().private_key(jwk_key()).build().unwrap();
        assert!(signed.client_secret().is_none());
        assert_eq!(
            signed.sealing_secret().expose(),
            signed.private_key().unwrap().jwk().unwrap()
        );
        assert!(!format!("{signed:?}").contains("c2VjcmV0"), "Debug hides the key");
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
    fn another_vendors_request_never_goes_to_autopays_endpoint() {
        let autopay = || any(DEFAULT_TOKEN_URL);
        let foreign = [
            autopay().audience(Some("https://api.other.example")),
            autopay().audience(None),
            autopay().body(BodyFormat::Form),
            autopay().client_auth(ClientAuth::SecretBasic),
            autopay().scope("read"),
            autopay().resource("https://api.other.example"),
            Config::builder("https://API-AUTH.autopay.io:443/oauth/token", "id")
                .client_secret(ClientSecret::new("s3cr3t-value"))
                .scope("read"),
            Config::builder("https://api-auth.autopay.io./other", "id")
                .client_secret(ClientSecret::new("s3cr3t-value"))
                .audience(None),
            Config::builder(DEFAULT_TOKEN_URL, "id")
                .client_auth(ClientAuth::PrivateKeyJwt)
                .private_key(jwk_key()),
        ];
        for builder in foreign {
            let err = builder.build().unwrap_err();
            assert_eq!(
                (err.code(), err.field()),
                ("invalid_config", Some(field::TOKEN_URL))
            );
            assert!(err.to_string().contains("Autopay"), "{err}");
            assert!(!err.to_string().contains("other.example"), "no value: {err}");
        }
        // Autopay's own request keeps its endpoint; the same request elsewhere is anyone's
        assert!(autopay().build().is_ok());
        assert!(autopay().default_expires_in(60).build().is_ok());
        assert!(any("https://as.example/token").scope("read").build().is_ok());
        assert!(!is_autopay_token_url(
            "https://api-auth.autopay.io.evil.example/t"
        ));
        assert!(!is_autopay_token_url("https://evil.example/api-auth.autopay.io"));
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
