//! Staff accounts, device enrollment and tokens.
//!
//! - Passwords: Argon2id (PHC strings). Verification runs even for an unknown user name, so the
//!   answer's timing does not tell whether the account exists.
//! - Enrollment codes: short-lived, single-use, bound to one account, stored as SHA-256 only.
//! - Refresh tokens: opaque, device-bound, stored as SHA-256, rotated on every use. A used token
//!   presented again means a copy exists somewhere: the device's token generation is raised,
//!   which revokes every refresh and access token of the device at once.
//! - Access tokens: JWT, HS256 only, with issuer, audience, expiry (10 minutes) and the device's
//!   token generation; every request also checks the device row, so revocation is immediate.
//!
//! Replacing passwords by the municipality's OpenID Connect provider changes only
//! [`verify_credentials`]: enrollment would carry an ID token from the provider instead of a
//! password; devices, refresh and access tokens stay as they are (see ARCHITECTURE.md).

use crate::audit::{self, AuditEvent};
use crate::db::{transaction, Conn};
use crate::error::{ErrorCode, Result, ServiceError};
use crate::params;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use jsonwebtoken::{decode, encode, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::Zeroizing;

pub const ISSUER: &str = "feltkontor-central";
pub const AUDIENCE: &str = "feltkontor-desktop";
/// Access tokens live 10 minutes (the issue's bound is 15).
pub const ACCESS_TTL_SECS: i64 = 600;
/// A refresh token not used for 30 days expires; each use issues a new one.
pub const REFRESH_TTL_MS: i64 = 30 * 24 * 3600 * 1000;
/// Enrollment codes are valid for 15 minutes unless the admin says otherwise.
pub const ENROLLMENT_TTL_MINUTES: i64 = 15;
/// Failed sign-ins allowed before the account is throttled.
pub const FREE_FAILURES: i64 = 5;

/// OWASP's Argon2id parameters for interactive sign-in (19 MiB, 2 passes).
fn argon2() -> Argon2<'static> {
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19 * 1024, 2, 1, None).expect("valid Argon2 parameters"),
    )
}

pub fn hash_password(password: &str) -> Result<String> {
    hash_password_for(password, &[])
}

/// Hashes a password that passed the rule, with the account's own words (user name, name)
/// counted as easy guesses.
pub fn hash_password_for(password: &str, personal: &[&str]) -> Result<String> {
    check_password_strength(password, personal)?;
    argon2()
        .hash_password(password.as_bytes())
        .map(|h: PasswordHash| h.to_string())
        .map_err(|e| ServiceError::internal(format!("argon2: {e}")))
}

/// The longest password, in bytes, as enrollment and lease renewal measure it.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The service's password rule: at least 12 characters, at most [`MAX_PASSWORD_BYTES`] bytes
/// (the limit enrollment takes, so every accepted password can be used), and hard to guess by
/// zxcvbn with Danish words and the account's own words (`personal`: the user name, the name)
/// in its dictionary ([`feltkontor_domain::strength`]; the app's passphrase rule uses the same
/// estimate).
pub fn check_password_strength(password: &str, personal: &[&str]) -> Result<()> {
    if password.chars().count() < 12 {
        return Err(ServiceError::invalid(
            "password",
            "The password must have at least 12 characters.",
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ServiceError::invalid(
            "password",
            "The password is too long.",
        ));
    }
    // The name's parts count too: "Birgitte.Madsen.1987" is guessed from "Birgitte Madsen".
    let mut words: Vec<String> = personal.iter().map(|w| w.to_lowercase()).collect();
    for w in personal {
        words.extend(
            w.split(|c: char| !c.is_alphanumeric())
                .filter(|p| p.chars().count() >= 3)
                .map(str::to_lowercase),
        );
    }
    // A password with the user name or a part of the name in it is refused outright
    // (zxcvbn may score "Birgitte.Madsen.1987" as strong).
    let lower = password.to_lowercase();
    if words
        .iter()
        .any(|w| w.chars().count() >= 4 && lower.contains(w.as_str()))
    {
        return Err(ServiceError::invalid(
            "password",
            "The password must not contain your user name or your name.",
        ));
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    if !feltkontor_domain::strength::strength(password, &words).acceptable {
        return Err(ServiceError::invalid(
            "password",
            "The password is too easy to guess: use several words that do not belong together, and not your name.",
        ));
    }
    Ok(())
}

fn verify_password(hash: Option<&str>, password: &str) -> bool {
    // An unknown user is checked against a real hash of a random password, so the answer
    // takes as long as for a known one.
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| {
        argon2()
            .hash_password(random_token("").as_bytes())
            .map(|h: PasswordHash| h.to_string())
            .unwrap_or_default()
    });
    let parsed = PasswordHash::new(hash.unwrap_or(dummy));
    match parsed {
        Ok(h) => argon2().verify_password(password.as_bytes(), &h).is_ok() && hash.is_some(),
        Err(_) => false,
    }
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// An enrollment code: eight characters from an alphabet without look-alikes, as XXXX-XXXX.
pub fn new_enrollment_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let chars: String = bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    format!("{}-{}", &chars[..4], &chars[4..])
}

/// Normalises a typed code: upper case, no spaces or dashes.
fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The HS256 key that signs access tokens, shared by every instance through the database.
pub fn ensure_signing_key(conn: &mut dyn Conn) -> Result<()> {
    if conn
        .query_one(
            "SELECT 1 FROM server_secrets WHERE name = 'jwt_hs256'",
            params![],
        )?
        .is_none()
    {
        let mut key = vec![0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        conn.execute(
            "INSERT INTO server_secrets (name, value) VALUES ('jwt_hs256', $1) ON CONFLICT (name) DO NOTHING",
            params![key],
        )?;
    }
    Ok(())
}

pub struct SigningKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl SigningKey {
    pub fn load(conn: &mut dyn Conn) -> Result<SigningKey> {
        let row = conn
            .query_one(
                "SELECT value FROM server_secrets WHERE name = 'jwt_hs256'",
                params![],
            )?
            .ok_or_else(|| {
                ServiceError::internal("no signing key: run `feltkontor-server admin migrate`")
            })?;
        let key = Zeroizing::new(row.bytes(0)?);
        crate::jwt_crypto::install();
        let unusable = |e: jsonwebtoken::errors::Error| {
            ServiceError::internal(format!("the signing key cannot be used: {e}"))
        };
        Ok(SigningKey {
            encoding: EncodingKey::from_secret(&key).map_err(unusable)?,
            decoding: DecodingKey::from_secret(&key).map_err(unusable)?,
        })
    }
}

/// What an access token says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The staff member.
    pub sub: Uuid,
    /// The device.
    pub did: Uuid,
    /// The device's token generation when the token was issued.
    pub gen: i64,
    pub iat: i64,
    pub exp: i64,
}

pub fn issue_access_token(
    key: &SigningKey,
    staff: Uuid,
    device: Uuid,
    generation: i64,
    now_ms: i64,
) -> Result<(String, i64)> {
    let now = now_ms / 1000;
    let claims = Claims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: staff,
        did: device,
        gen: generation,
        iat: now,
        exp: now + ACCESS_TTL_SECS,
    };
    let token = encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &key.encoding,
    )
    .map_err(|e| ServiceError::internal(format!("jwt encode: {e}")))?;
    Ok((token, ACCESS_TTL_SECS))
}

/// Checks signature (HS256 only: `none` and every other algorithm are refused), issuer,
/// audience and expiry (no leeway).
/// Checks an access token's signature, issuer and audience, and its expiry against `now_ms`
/// (the service's clock, not the library's).
pub fn verify_access_token(key: &SigningKey, token: &str, now_ms: i64) -> Result<Claims> {
    let mut v = Validation::new(jsonwebtoken::Algorithm::HS256);
    v.set_issuer(&[ISSUER]);
    v.set_audience(&[AUDIENCE]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.validate_exp = false;
    v.leeway = 0;
    let claims = decode::<Claims>(token, &key.decoding, &v)
        .map(|d| d.claims)
        .map_err(|_| ServiceError::unauthenticated())?;
    if claims.exp <= now_ms / 1000 {
        return Err(ServiceError::new(
            ErrorCode::TokenExpired,
            "The access token has expired; refresh it.",
        ));
    }
    Ok(claims)
}

/// An account as the service knows it.
#[derive(Debug, Clone)]
pub struct Account {
    pub staff_id: Uuid,
    pub username: String,
    pub contact: String,
    pub disabled: bool,
}

/// What a successful enrollment or refresh hands the device.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub device_id: Uuid,
    pub staff_id: Uuid,
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_token: String,
    pub lease: Lease,
}

/// The device lease: the secret the device needs (with the worker's passphrase) to unlock its
/// local store, and until when (Unix ms) it may use it without coming back.
#[derive(Clone)]
pub struct Lease {
    pub secret: String,
    pub expires_at: i64,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// How long a device may stay away by default before its lease runs out: 72 hours.
pub const DEFAULT_LEASE_MS: i64 = 72 * 3600 * 1000;

/// The device's lease, renewed from `now` for `lease_ms`. The secret is made once per device
/// (32 random bytes, hex) and stays the same: renewing moves only the expiry, which the device
/// keeps. A revoked device never reaches this.
fn renew_lease(conn: &mut dyn Conn, device: Uuid, now: i64, lease_ms: i64) -> Result<Lease> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    conn.execute(
        "UPDATE devices SET lease_secret = $1 WHERE id = $2 AND lease_secret IS NULL",
        params![hex::encode(bytes.as_ref()), device],
    )?;
    let secret = conn
        .query_one(
            "SELECT lease_secret FROM devices WHERE id = $1",
            params![device],
        )?
        .map(|r| r.opt_text(0))
        .transpose()?
        .flatten()
        .ok_or_else(|| ServiceError::internal("device without a lease secret"))?;
    Ok(Lease {
        secret,
        expires_at: now.saturating_add(lease_ms),
    })
}

/// Throttle state: `Some(seconds)` while the user name is locked.
fn throttled(conn: &mut dyn Conn, username: &str, now: i64) -> Result<Option<u64>> {
    Ok(conn
        .query_one(
            "SELECT locked_until FROM login_throttle WHERE username = $1",
            params![username],
        )?
        .map(|r| r.int(0))
        .transpose()?
        .filter(|until| *until > now)
        .map(|until| ((until - now) as u64).div_ceil(1000)))
}

fn record_failure(conn: &mut dyn Conn, username: &str, now: i64) -> Result<i64> {
    let failures = conn
        .query_one(
            "SELECT failures FROM login_throttle WHERE username = $1",
            params![username],
        )?
        .map(|r| r.int(0))
        .transpose()?
        .unwrap_or(0)
        + 1;
    // From the sixth failure: 30 s, 60 s, 120 s, … up to 15 minutes.
    let lock_ms = if failures > FREE_FAILURES {
        (30_000i64 << (failures - FREE_FAILURES - 1).min(5)).min(15 * 60_000)
    } else {
        0
    };
    conn.execute(
        "INSERT INTO login_throttle (username, failures, locked_until) VALUES ($1, $2, $3)
         ON CONFLICT (username) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until",
        params![username, failures, now + lock_ms],
    )?;
    Ok(failures)
}

fn account_by_username(conn: &mut dyn Conn, username: &str) -> Result<Option<(Account, String)>> {
    conn.query_one(
        "SELECT staff_id, username, contact, disabled, password_hash FROM accounts WHERE username = $1",
        params![username],
    )?
    .map(|r| {
        Ok((
            Account { staff_id: r.uuid(0)?, username: r.text(1)?, contact: r.text(2)?, disabled: r.int(3)? != 0 },
            r.text(4)?,
        ))
    })
    .transpose()
}

/// The sign-in check. Today a password; with OpenID Connect, the verification of an ID token.
pub fn verify_credentials(
    conn: &mut dyn Conn,
    username: &str,
    password: &str,
) -> Result<Option<Account>> {
    let found = account_by_username(conn, username)?;
    let ok = verify_password(found.as_ref().map(|(_, h)| h.as_str()), password);
    Ok(found.filter(|(a, _)| ok && !a.disabled).map(|(a, _)| a))
}

pub struct EnrollInput<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub code: &'a str,
    pub device_name: &'a str,
}

/// Registers a device for the account that the code was issued to. Every failure (unknown
/// user, wrong password, wrong/expired/used code) gives the same answer and counts towards the
/// user name's throttle; each is audited.
pub fn enroll(
    conn: &mut dyn Conn,
    key: &SigningKey,
    input: &EnrollInput<'_>,
    lease_ms: i64,
    now: i64,
) -> Result<Tokens> {
    let username = input.username.trim().to_lowercase();
    if username.is_empty() || username.len() > 200 {
        return Err(ServiceError::invalid("username", "Enter your user name."));
    }
    if input.password.is_empty() || input.password.len() > 1024 {
        return Err(ServiceError::invalid("password", "Enter your password."));
    }
    let device_name = input.device_name.trim();
    if device_name.is_empty()
        || device_name.chars().count() > 100
        || device_name.chars().any(char::is_control)
        // Shown to every participant in a case's history: no direction overrides or
        // invisible characters that make one name look like another.
        || device_name
            .chars()
            .any(|c| c != ' ' && feltkontor_domain::text::is_invisible(c))
    {
        return Err(ServiceError::invalid(
            "device_name",
            "Give the device a name of up to 100 characters.",
        ));
    }
    let code = normalize_code(input.code);
    if code.len() != 8 {
        return Err(ServiceError::invalid(
            "code",
            "The enrollment code has 8 characters (XXXX-XXXX).",
        ));
    }
    let outcome = transaction(conn, None, |conn| {
        if let Some(wait) = throttled(conn, &username, now)? {
            return Ok(Err(ServiceError::new(
                ErrorCode::LoginThrottled,
                "Too many failed sign-ins. Wait before trying again.",
            )
            .with_retry_after(wait)));
        }
        let account = verify_credentials(conn, &username, input.password)?;
        let code_ok = match &account {
            Some(a) => conn.execute(
                "UPDATE enrollment_codes SET used_at = $1 WHERE code_hash = $2 AND staff_id = $3 AND used_at IS NULL AND expires_at > $1",
                params![now, sha256_hex(&code), a.staff_id],
            )? == 1,
            None => false,
        };
        let Some(account) = account.filter(|_| code_ok) else {
            let failures = record_failure(conn, &username, now)?;
            tracing::warn!(failures, "failed enrollment for a user name");
            audit::append(
                conn,
                &AuditEvent::security(
                    None,
                    None,
                    "enroll",
                    "enrollment failed: wrong user name, password or code",
                ),
            )?;
            return Ok(Err(ServiceError::new(
                ErrorCode::EnrollmentFailed,
                "The user name, password or enrollment code is not right, or the code has expired.",
            )));
        };
        conn.execute(
            "DELETE FROM login_throttle WHERE username = $1",
            params![&username],
        )?;
        let device_id = Uuid::now_v7();
        conn.execute(
            "INSERT INTO devices (id, staff_id, name, enrolled_at, last_seen_at, token_generation) VALUES ($1, $2, $3, $4, $4, 1)",
            params![device_id, account.staff_id, device_name, now],
        )?;
        let refresh_token = new_refresh_token(conn, device_id, 1, now)?;
        let lease = renew_lease(conn, device_id, now, lease_ms)?;
        let (access_token, expires_in) =
            issue_access_token(key, account.staff_id, device_id, 1, now)?;
        audit::append(
            conn,
            &AuditEvent {
                staff_id: Some(account.staff_id),
                device_id: Some(device_id),
                action: "enroll",
                case_id: None,
                person_id: None,
                detail: "device enrolled".into(),
                result: "ok",
            },
        )?;
        Ok(Ok(Tokens {
            device_id,
            staff_id: account.staff_id,
            access_token,
            expires_in,
            refresh_token,
            lease,
        }))
    })?;
    outcome
}

fn new_refresh_token(
    conn: &mut dyn Conn,
    device: Uuid,
    generation: i64,
    now: i64,
) -> Result<String> {
    let token = random_token("rt_");
    conn.execute(
        "INSERT INTO refresh_tokens (token_hash, device_id, generation, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        params![sha256_hex(&token), device, generation, now, now + REFRESH_TTL_MS],
    )?;
    Ok(token)
}

/// How long a refresh whose answer was lost may be retried with the same token.
pub const REFRESH_RETRY_MS: i64 = 60_000;

/// Whether a spent refresh token is presented again because the answer to its use was lost on
/// the network (a laptop on a guest network): it was used at most [`REFRESH_RETRY_MS`] ago and
/// the token issued for it has never been used. That successor is then spent in its place, so
/// whoever might hold it cannot use it without revoking the family.
fn lost_answer_retry(conn: &mut dyn Conn, hash: &str, now: i64) -> Result<bool> {
    let Some(row) = conn.query_one(
        "SELECT t.used_at, t.replaced_by, s.used_at FROM refresh_tokens t
         LEFT JOIN refresh_tokens s ON s.token_hash = t.replaced_by WHERE t.token_hash = $1",
        params![hash],
    )?
    else {
        return Ok(false);
    };
    let (used_at, successor, successor_used) = (row.opt_int(0)?, row.opt_text(1)?, row.opt_int(2)?);
    match successor {
        Some(successor)
            if successor_used.is_none() && used_at.is_some_and(|u| now - u <= REFRESH_RETRY_MS) =>
        {
            Ok(conn.execute(
                "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
                params![now, &successor],
            )? == 1)
        }
        _ => Ok(false),
    }
}

/// Rotates a refresh token. A token used before revokes the device's whole token family,
/// unless it is the retry of a refresh whose answer was lost ([`lost_answer_retry`]).
pub fn refresh(
    conn: &mut dyn Conn,
    key: &SigningKey,
    token: &str,
    lease_ms: i64,
    now: i64,
) -> Result<Tokens> {
    if token.len() > 200 || !token.starts_with("rt_") {
        return Err(ServiceError::new(
            ErrorCode::InvalidRefreshToken,
            "The refresh token is not valid.",
        ));
    }
    let hash = sha256_hex(token);
    let outcome = transaction(conn, None, |conn| {
        let Some(row) = conn.query_one(
            "SELECT t.device_id, t.generation, t.expires_at, d.staff_id, d.revoked_at, d.token_generation
             FROM refresh_tokens t JOIN devices d ON d.id = t.device_id WHERE t.token_hash = $1",
            params![&hash],
        )?
        else {
            return Ok(Err(ServiceError::new(ErrorCode::InvalidRefreshToken, "The refresh token is not valid.")));
        };
        let (device, generation, expires_at, staff) =
            (row.uuid(0)?, row.int(1)?, row.int(2)?, row.uuid(3)?);
        if row.opt_int(4)?.is_some() {
            return Ok(Err(device_revoked()));
        }
        if generation != row.int(5)? {
            return Ok(Err(session_revoked()));
        }
        let claimed = conn.execute(
            "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
            params![now, &hash],
        )?;
        if claimed != 1 && !lost_answer_retry(conn, &hash, now)? {
            // Replayed: whoever holds a copy must not keep a session. Revoke the family.
            conn.execute(
                "UPDATE devices SET token_generation = token_generation + 1 WHERE id = $1",
                params![device],
            )?;
            tracing::warn!(device = %device, "refresh token replayed: the device's tokens are revoked");
            audit::append(
                conn,
                &AuditEvent::security(Some(staff), Some(device), "refresh_token_replayed", "a used refresh token was presented again; every token of the device was revoked"),
            )?;
            return Ok(Err(session_revoked()));
        }
        if expires_at <= now {
            return Ok(Err(ServiceError::new(
                ErrorCode::InvalidRefreshToken,
                "The refresh token has expired: connect the device again.",
            )));
        }
        conn.execute(
            "UPDATE devices SET last_seen_at = $1 WHERE id = $2",
            params![now, device],
        )?;
        let refresh_token = new_refresh_token(conn, device, generation, now)?;
        conn.execute(
            "UPDATE refresh_tokens SET replaced_by = $1 WHERE token_hash = $2",
            params![sha256_hex(&refresh_token), &hash],
        )?;
        let lease = renew_lease(conn, device, now, lease_ms)?;
        let (access_token, expires_in) = issue_access_token(key, staff, device, generation, now)?;
        Ok(Ok(Tokens {
            device_id: device,
            staff_id: staff,
            access_token,
            expires_in,
            refresh_token,
            lease,
        }))
    })?;
    outcome
}

/// Renews the lease of a device whose lease ran out while it was away (its refresh token is
/// inside the store it can no longer open): the worker proves who they are with their password,
/// as at enrollment. Failures count towards the user name's throttle and are audited; a revoked
/// device gets `device_revoked`, so its store stays unreadable.
pub fn recover_lease(
    conn: &mut dyn Conn,
    device: Uuid,
    username: &str,
    password: &str,
    lease_ms: i64,
    now: i64,
) -> Result<Lease> {
    let username = username.trim().to_lowercase();
    if username.is_empty() || username.len() > 200 {
        return Err(ServiceError::invalid("username", "Enter your user name."));
    }
    if password.is_empty() || password.len() > 1024 {
        return Err(ServiceError::invalid("password", "Enter your password."));
    }
    transaction(conn, None, |conn| {
        if let Some(wait) = throttled(conn, &username, now)? {
            return Ok(Err(ServiceError::new(
                ErrorCode::LoginThrottled,
                "Too many failed sign-ins. Wait before trying again.",
            )
            .with_retry_after(wait)));
        }
        let account = verify_credentials(conn, &username, password)?;
        let device_row = conn.query_one(
            "SELECT staff_id, revoked_at FROM devices WHERE id = $1",
            params![device],
        )?;
        let owned = match (&account, &device_row) {
            (Some(a), Some(d)) => d.uuid(0)? == a.staff_id,
            _ => false,
        };
        let Some(account) = account.filter(|_| owned) else {
            record_failure(conn, &username, now)?;
            audit::append(
                conn,
                &AuditEvent::security(
                    None,
                    None,
                    "lease_recover",
                    "lease renewal failed: wrong user name, password or device",
                ),
            )?;
            return Ok(Err(ServiceError::new(
                ErrorCode::EnrollmentFailed,
                "The user name or password is not right, or the device is not yours.",
            )));
        };
        if device_row
            .map(|d| d.opt_int(1))
            .transpose()?
            .flatten()
            .is_some()
        {
            audit::append(
                conn,
                &AuditEvent::security(
                    Some(account.staff_id),
                    Some(device),
                    "lease_recover",
                    "lease renewal refused: the device is revoked",
                ),
            )?;
            return Ok(Err(device_revoked()));
        }
        conn.execute(
            "DELETE FROM login_throttle WHERE username = $1",
            params![&username],
        )?;
        conn.execute(
            "UPDATE devices SET last_seen_at = $1 WHERE id = $2",
            params![now, device],
        )?;
        let lease = renew_lease(conn, device, now, lease_ms)?;
        audit::append(
            conn,
            &AuditEvent {
                staff_id: Some(account.staff_id),
                device_id: Some(device),
                action: "lease_recover",
                case_id: None,
                person_id: None,
                detail: "an expired lease was renewed with the password".into(),
                result: "ok",
            },
        )?;
        Ok(Ok(lease))
    })?
}

pub fn device_revoked() -> ServiceError {
    ServiceError::new(
        ErrorCode::DeviceRevoked,
        "This device has been revoked. Its local data must be deleted.",
    )
}

pub fn session_revoked() -> ServiceError {
    ServiceError::new(
        ErrorCode::SessionRevoked,
        "The device's sign-in has been revoked for safety. Connect the device again with a new enrollment code.",
    )
}

/// The device behind a verified access token, checked against its current state (read-only).
pub fn check_device(conn: &mut dyn Conn, claims: &Claims) -> Result<()> {
    let row = conn
        .query_one(
            "SELECT d.staff_id, d.revoked_at, d.token_generation, d.last_seen_at, a.disabled
             FROM devices d JOIN accounts a ON a.staff_id = d.staff_id WHERE d.id = $1",
            params![claims.did],
        )?
        .ok_or_else(ServiceError::unauthenticated)?;
    if row.uuid(0)? != claims.sub {
        return Err(ServiceError::unauthenticated());
    }
    if row.opt_int(1)?.is_some() {
        return Err(device_revoked());
    }
    if row.int(2)? != claims.gen {
        return Err(session_revoked());
    }
    if row.int(4)? != 0 {
        return Err(ServiceError::new(
            ErrorCode::Forbidden,
            "The account is disabled.",
        ));
    }
    Ok(())
}

/// Records that the device was seen (at most once a minute). Its own statement, outside the
/// request's transaction: reads run in read-only transactions.
pub fn touch_device(conn: &mut dyn Conn, claims: &Claims, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE devices SET last_seen_at = $1 WHERE id = $2 AND (last_seen_at IS NULL OR last_seen_at < $3)",
        params![now, claims.did, now - 60_000],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_password_is_neither_guessable_nor_the_workers_own_name_nor_too_long_to_use() {
        let personal = ["birgittemadsen", "Birgitte Madsen", "BMA"];
        for weak in [
            "birgittemadsen1",
            "Birgitte.Madsen.1987",
            "aaaaaaaaaaaaaaaa",
            "sommerferie2026",
        ] {
            assert!(check_password_strength(weak, &personal).is_err(), "{weak}");
        }
        assert!(check_password_strength("blæksprutte vindmølle kompas 47", &personal).is_ok());
        // 1,024 characters of æ are 2,048 bytes: more than enrollment takes.
        let long: String = "blæksprutte vindmølle kompas "
            .repeat(40)
            .chars()
            .take(1024)
            .collect();
        assert!(long.len() > MAX_PASSWORD_BYTES);
        assert!(check_password_strength(&long, &personal).is_err());
    }

    use super::*;

    /// A password hash written by an earlier build (argon2 0.5): accounts made before an upgrade
    /// of the hashing library still sign in.
    const EARLIER_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$1vPQvI4f+7htBi9K7saXCw$o2QlFz8CUGvBuF+ZnWc3V2iobWteaYn/VClck7SQbOU";

    #[test]
    fn passwords_hashed_by_an_earlier_build_still_verify() {
        assert!(verify_password(
            Some(EARLIER_HASH),
            "korrekt-hest-batteri-haefteklamme"
        ));
        assert!(!verify_password(
            Some(EARLIER_HASH),
            "forkert-hest-batteri-haefteklamme"
        ));
        assert!(!verify_password(None, "korrekt-hest-batteri-haefteklamme"));
        let fresh = hash_password("et-andet-langt-kodeord").unwrap();
        assert!(fresh.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password(Some(&fresh), "et-andet-langt-kodeord"));
    }
}
