//! Who may call what: operators' bearer credentials (the bootstrap admin token and
//! API keys, [`ApiKey`], each with a [`Role`]), JWT join tokens (audience
//! [`JOIN_AUDIENCE`]) and JWT access tokens (audience [`ACCESS_AUDIENCE`]). Which
//! caller each route admits is [`crate::roles`]' table, enforced by
//! [`authenticate`] before any handler runs.
//!
//! Exactly one signing algorithm is configured ([`JwtKeys`]) and it is the only one
//! accepted: `alg=none`, another algorithm or another key is refused. Issuer,
//! audience, `exp` and `nbf` are always checked, with [`LEEWAY_SECONDS`] of clock
//! skew. Join tokens are single-use because the session aggregate admits each party
//! once (it records only the token's SHA-256 digest); each carries a fresh `jti`.
//! An API key is compared by its SHA-256 digest, in constant time, with the
//! registry's ([`mpc_actors::Operators`]), read afresh on every call so a revoked
//! key fails at once on every replica. Tokens and keys are never logged.

use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, ResponseError, web};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use mpc_actors::{JoinToken, Operators, TokenIssuer};
use mpc_events::{CredentialId, PartyId, Role, SessionId, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::error::GatewayError;
use crate::roles::Access;

/// Audience of join tokens.
pub const JOIN_AUDIENCE: &str = "mpc-join";
/// Audience of the access tokens parties receive when they join.
pub const ACCESS_AUDIENCE: &str = "mpc-party";
/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 5;
/// Shortest HS256 secret accepted.
pub const MIN_HS256_SECRET_BYTES: usize = 32;
/// Shortest admin token accepted.
pub const MIN_ADMIN_TOKEN_BYTES: usize = 16;

/// Why a key or token setting was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("HS256 secret must be at least {MIN_HS256_SECRET_BYTES} bytes, got {0}")]
    ShortSecret(usize),
    #[error("admin token must be at least {MIN_ADMIN_TOKEN_BYTES} bytes")]
    ShortAdminToken,
    #[error("Ed25519 key: {0}")]
    Ed25519(String),
}

/// The one JWT algorithm and its keys.
#[derive(Clone)]
pub struct JwtKeys {
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl JwtKeys {
    /// HMAC-SHA256 with a shared secret of at least 32 bytes.
    pub fn hs256(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < MIN_HS256_SECRET_BYTES {
            return Err(KeyError::ShortSecret(secret.len()));
        }
        Ok(Self {
            algorithm: Algorithm::HS256,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        })
    }

    /// Ed25519 (`EdDSA`) from PEM files' contents: a PKCS#8 private key and its
    /// SubjectPublicKeyInfo public key.
    pub fn ed25519_pem(private_pem: &[u8], public_pem: &[u8]) -> Result<Self, KeyError> {
        let ed = |e: jsonwebtoken::errors::Error| KeyError::Ed25519(e.to_string());
        Self {
            algorithm: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_pem(private_pem).map_err(ed)?,
            decoding: DecodingKey::from_ed_pem(public_pem).map_err(ed)?,
        }
        .checked()
    }

    /// A fresh Ed25519 key pair that lives as long as the process (tokens do not
    /// survive a restart, nor verify on another replica).
    pub fn generate_ed25519() -> Result<Self, KeyError> {
        use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new())
            .map_err(|e| KeyError::Ed25519(e.to_string()))?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|e| KeyError::Ed25519(e.to_string()))?;
        Self {
            algorithm: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
            decoding: DecodingKey::from_ed_der(pair.public_key().as_ref()),
        }
        .checked()
    }

    /// Signs and verifies a probe token, so that a key pair that loaded always signs
    /// and its halves match.
    fn checked(self) -> Result<Self, KeyError> {
        let err = |e: jsonwebtoken::errors::Error| KeyError::Ed25519(e.to_string());
        let header = Header::new(self.algorithm);
        let probe =
            jsonwebtoken::encode(&header, &serde_json::json!({}), &self.encoding).map_err(err)?;
        let mut validation = Validation::new(self.algorithm);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_aud = false;
        jsonwebtoken::decode::<serde_json::Value>(&probe, &self.decoding, &validation)
            .map_err(err)?;
        Ok(self)
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// The claims of join and access tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The party.
    pub sub: String,
    /// The session.
    pub sid: String,
    pub jti: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An operator: the bootstrap admin token or an API key.
    Operator(Principal),
    /// A party, with the access token it got when it joined `session`.
    Party { session: SessionId, party: PartyId },
}

/// Which operator credential a call came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialRef {
    /// The `--admin-token` of `mpc serve`.
    Bootstrap,
    /// An API key of the registry.
    Key(CredentialId),
}

impl std::fmt::Display for CredentialRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bootstrap => f.write_str(BOOTSTRAP_CREDENTIAL),
            Self::Key(id) => id.fmt(f),
        }
    }
}

/// How the bootstrap admin token is named where a credential id would be.
pub const BOOTSTRAP_CREDENTIAL: &str = "bootstrap-admin";

/// An authenticated operator: its credential and role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub credential: CredentialRef,
    pub role: Role,
}

impl Principal {
    /// Whether this operator may call a route open to `roles` (`admin` may call
    /// every operator route).
    pub fn may(&self, roles: &[Role]) -> bool {
        self.role == Role::Admin || roles.contains(&self.role)
    }
}

/// Issues and checks every credential the gateway accepts.
pub struct Auth {
    keys: JwtKeys,
    issuer: String,
    admin_digest: [u8; 32],
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Compares SHA-256 digests without an early exit.
fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Auth {
    pub fn new(keys: JwtKeys, issuer: String, admin_token: &str) -> Result<Self, KeyError> {
        if admin_token.len() < MIN_ADMIN_TOKEN_BYTES {
            return Err(KeyError::ShortAdminToken);
        }
        Ok(Self {
            keys,
            issuer,
            admin_digest: Sha256::digest(admin_token.as_bytes()).into(),
        })
    }

    /// A signed token for `party` in `session` with audience `aud`, valid until
    /// `expires_at` (rounded down to whole seconds).
    pub fn sign(
        &self,
        aud: &str,
        session: SessionId,
        party: &PartyId,
        expires_at: Timestamp,
    ) -> Zeroizing<String> {
        let now = now_seconds();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: aud.to_owned(),
            sub: party.to_string(),
            sid: session.to_string(),
            jti: Uuid::new_v4().to_string(),
            iat: now,
            nbf: now,
            exp: expires_at.as_millis().div_euclid(1000),
        };
        let token = jsonwebtoken::encode(
            &Header::new(self.keys.algorithm),
            &claims,
            &self.keys.encoding,
        )
        .unwrap_or_else(|e| panic!("keys are checked when they load, so signing succeeds: {e}"));
        Zeroizing::new(token)
    }

    /// The claims of `token` if it is signed by us with the configured algorithm,
    /// comes from our issuer, is meant for `aud` and is within its validity window.
    pub fn verify(&self, token: &str, aud: &str) -> Result<Claims, GatewayError> {
        let mut validation = Validation::new(self.keys.algorithm);
        validation.algorithms = vec![self.keys.algorithm];
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[aud]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        jsonwebtoken::decode::<Claims>(token, &self.keys.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => {
                    GatewayError::unauthorized("token_expired", "token has expired")
                }
                ErrorKind::ImmatureSignature => {
                    GatewayError::unauthorized("token_not_yet_valid", "token is not valid yet")
                }
                ErrorKind::InvalidAudience => GatewayError::unauthorized(
                    "invalid_token",
                    format!("token is not meant for {aud}"),
                ),
                ErrorKind::InvalidIssuer => {
                    GatewayError::unauthorized("invalid_token", "token has another issuer")
                }
                ErrorKind::InvalidAlgorithm => {
                    GatewayError::unauthorized("invalid_token", "token algorithm is not allowed")
                }
                ErrorKind::InvalidSignature => {
                    GatewayError::unauthorized("invalid_token", "token signature is invalid")
                }
                _ => GatewayError::unauthorized("invalid_token", "token is malformed"),
            })
    }

    fn is_admin(&self, token: &str) -> bool {
        digests_equal(&Sha256::digest(token.as_bytes()).into(), &self.admin_digest)
    }

    /// The caller `token` names: the bootstrap admin, an operator's API key that
    /// the registry holds and has not revoked, or a party's access token.
    pub async fn identify(
        &self,
        token: &str,
        operators: &Operators,
    ) -> Result<Caller, GatewayError> {
        if self.is_admin(token) {
            return Ok(Caller::Operator(Principal {
                credential: CredentialRef::Bootstrap,
                role: Role::Admin,
            }));
        }
        if let Some(key) = ApiKey::parse(token) {
            let invalid = || GatewayError::unauthorized("invalid_api_key", "API key is not valid");
            let credential = operators.active(key.id).await?.ok_or_else(invalid)?;
            if !digests_equal(&key.digest(), &credential.digest) {
                return Err(invalid());
            }
            return Ok(Caller::Operator(Principal {
                credential: CredentialRef::Key(credential.id),
                role: credential.role,
            }));
        }
        let claims = self.verify(token, ACCESS_AUDIENCE)?;
        let bad = |_| GatewayError::unauthorized("invalid_token", "token claims are malformed");
        Ok(Caller::Party {
            session: claims.sid.parse().map_err(bad)?,
            party: PartyId::parse(claims.sub).map_err(bad)?,
        })
    }
}

/// An operator's API key: `mpc_<credential id, 32 hex>_<secret, 64 hex>`. Only its
/// SHA-256 digest is stored.
pub struct ApiKey {
    pub id: CredentialId,
    key: Zeroizing<String>,
}

/// Every API key starts with this.
pub const API_KEY_PREFIX: &str = "mpc_";

impl ApiKey {
    /// A fresh key for credential `id`: 32 bytes from the operating system's
    /// random source.
    pub fn generate(id: CredentialId) -> Result<Self, GatewayError> {
        use aws_lc_rs::rand::SecureRandom;
        let mut secret = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::SystemRandom::new()
            .fill(secret.as_mut())
            .map_err(|_| {
                GatewayError::new(
                    actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "no randomness for a new API key",
                )
            })?;
        Ok(Self {
            id,
            key: Zeroizing::new(format!(
                "{API_KEY_PREFIX}{}_{}",
                id.as_uuid().simple(),
                hex::encode(secret.as_ref())
            )),
        })
    }

    /// `token` as an API key, if it has an API key's shape.
    pub fn parse(token: &str) -> Option<Self> {
        let rest = token.strip_prefix(API_KEY_PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        let hex_of = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex_of(id, 32) || !hex_of(secret, 64) {
            return None;
        }
        Some(Self {
            id: CredentialId::from_uuid(Uuid::try_parse(id).ok()?),
            key: Zeroizing::new(token.to_owned()),
        })
    }

    /// SHA-256 of the whole key, as the registry keeps it.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.key.as_bytes()).into()
    }

    /// The key itself, to show once.
    pub fn expose(&self) -> &str {
        &self.key
    }
}

/// The caller the authentication middleware found for this request.
pub fn caller(req: &HttpRequest) -> Result<Caller, GatewayError> {
    req.extensions().get::<Caller>().cloned().ok_or_else(|| {
        GatewayError::unauthorized(
            "unauthorized",
            "missing or malformed `Authorization: Bearer <token>` header",
        )
    })
}

fn forbidden_role(role: Role) -> GatewayError {
    GatewayError::forbidden(
        "role_forbidden",
        format!("the {role} role may not make this call"),
    )
}

/// Requires an operator whose role is `admin` or one of `roles`.
pub fn operator(req: &HttpRequest, roles: &[Role]) -> Result<Principal, GatewayError> {
    match caller(req)? {
        Caller::Operator(p) if p.may(roles) => Ok(p),
        Caller::Operator(p) => Err(forbidden_role(p.role)),
        Caller::Party { .. } => Err(needs_operator()),
    }
}

fn needs_operator() -> GatewayError {
    GatewayError::forbidden("forbidden", "this call needs an operator credential")
}

/// Requires a party's access token for `session`; returns the party.
pub fn party(req: &HttpRequest, session: SessionId) -> Result<PartyId, GatewayError> {
    match caller(req)? {
        Caller::Party { session: s, party } if s == session => Ok(party),
        Caller::Party { .. } => Err(GatewayError::forbidden(
            "forbidden",
            "access token is for another session",
        )),
        Caller::Operator(_) => Err(GatewayError::forbidden(
            "forbidden",
            "this call needs a party's access token",
        )),
    }
}

/// Requires an operator (any role) or a party's access token for `session`.
pub fn operator_or_party(req: &HttpRequest, session: SessionId) -> Result<(), GatewayError> {
    match caller(req)? {
        Caller::Operator(_) => Ok(()),
        Caller::Party { session: s, .. } if s == session => Ok(()),
        Caller::Party { .. } => Err(GatewayError::forbidden(
            "forbidden",
            "access token is for another session",
        )),
    }
}

/// Authenticate, then authorize, before validating: every routed `/v1` call but
/// the [`Access::Open`] ones must carry a valid bearer token (401 otherwise), and
/// the token's caller must be one its route admits ([`crate::roles::access`]: 403
/// otherwise), and within its credential's rate ([`crate::limits`]: 429), before
/// its path or body is read. A caller without the right credential learns nothing
/// about what would have been valid. The caller is named in the request's span
/// ([`crate::request_id`]) and left in the request's extensions for the handler
/// ([`caller`]), which still checks what depends on the path or body (a party's
/// session, the kind of session).
pub async fn authenticate(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let access = match request.match_pattern() {
        None => Access::Open,
        Some(pattern) => crate::roles::access(request.method(), &pattern),
    };
    if access != Access::Open {
        let refused = match admit(&request, access).await {
            Ok(caller) => {
                request.extensions_mut().insert(caller);
                None
            }
            Err(e) => Some(e),
        };
        if let Some(error) = refused {
            let response = error.error_response();
            return Ok(request.into_response(response).map_into_right_body());
        }
    }
    next.call(request)
        .await
        .map(ServiceResponse::map_into_left_body)
}

async fn admit(request: &ServiceRequest, access: Access) -> Result<Caller, GatewayError> {
    let state = request
        .app_data::<web::Data<crate::GatewayState>>()
        .ok_or_else(|| {
            GatewayError::new(
                actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the gateway is not configured",
            )
        })?;
    let token = bearer(request.request())?;
    let caller = state.auth.identify(token, &state.operators).await?;
    let span = tracing::Span::current();
    match &caller {
        Caller::Operator(p) => {
            span.record("credential", tracing::field::display(p.credential));
            span.record("role", tracing::field::display(p.role));
        }
        Caller::Party { session, party } => {
            span.record("party", tracing::field::display(party));
            span.record("session", tracing::field::display(session));
        }
    }
    match (&caller, access) {
        (Caller::Operator(p), Access::Operators(roles) | Access::OperatorsOrParty(roles)) => {
            if !p.may(roles) {
                return Err(forbidden_role(p.role));
            }
            state.limits.check(p).map_err(GatewayError::rate_limited)?;
        }
        (Caller::Operator(p), Access::Party) => {
            return Err(GatewayError::forbidden(
                "forbidden",
                format!(
                    "this call needs a party's access token, not the {} role's",
                    p.role
                ),
            ));
        }
        (Caller::Party { .. }, Access::Operators(_)) => return Err(needs_operator()),
        (Caller::Party { .. }, Access::Party | Access::OperatorsOrParty(_)) | (_, Access::Open) => {
        }
    }
    Ok(caller)
}

fn bearer(req: &HttpRequest) -> Result<&str, GatewayError> {
    let missing = || {
        GatewayError::unauthorized(
            "unauthorized",
            "missing or malformed `Authorization: Bearer <token>` header",
        )
    };
    let value = req
        .headers()
        .get(AUTHORIZATION)
        .ok_or_else(missing)?
        .to_str()
        .map_err(|_| missing())?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() => {
            Ok(token.trim())
        }
        _ => Err(missing()),
    }
}

/// Join tokens as JWTs (audience [`JOIN_AUDIENCE`]), for
/// [`mpc_actors::Coordinator::with_token_issuer`].
pub struct JwtJoinTokens(pub Arc<Auth>);

impl TokenIssuer for JwtJoinTokens {
    fn issue(&self, session: SessionId, party: &PartyId, expires_at: Timestamp) -> JoinToken {
        let token = self.0.sign(JOIN_AUDIENCE, session, party, expires_at);
        JoinToken::new(String::clone(&token))
    }
}
