//! Who is calling: argon2id passwords, HS256 access tokens (one accepted algorithm, key in the
//! database's server secrets), device-bound refresh tokens stored as SHA-256 hashes, and the
//! [`Caller`] and [`Admin`] extractors that every authenticated handler takes.
//!
//! A valid token is not enough: [`Caller`] also checks in storage, on every request, that the
//! token's device is registered to the token's user and not revoked. The role comes from storage
//! too, so a token never outlives a change of role.

use crate::error::ApiError;
use crate::service::Service;
use crate::service::accounts::DeviceAccess;
use crate::state::AppState;
use anyhow::{Context, Result, anyhow, bail};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, SaltString};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use sync_core::model::DeviceId;
use sync_core::protocol::Role;
use time::OffsetDateTime;

/// The only algorithm access tokens are signed with and accepted in.
pub const TOKEN_ALGORITHM: Algorithm = Algorithm::HS256;

/// Length of a new signing key, in bytes.
pub const SIGNING_KEY_BYTES: usize = 64;

/// The shortest signing key accepted from an existing key file.
const MIN_SIGNING_KEY_BYTES: usize = 32;

/// Length of a generated password (from a 31-letter alphabet: about 99 bits).
const GENERATED_PASSWORD_LEN: usize = 20;

/// Characters of generated passwords: no 0/o, 1/l/i, so they survive being read aloud.
const PASSWORD_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// The shortest password accepted for a new account.
pub const MIN_PASSWORD_LEN: usize = 10;

/// The name of the access-token signing key among the server secrets (`server_secrets`).
pub const SIGNING_KEY_NAME: &str = "signing_key";

/// The access-token signing key. It lives in the database with the other server secrets, so that
/// every server on one database signs and checks tokens alike and a copied database keeps its
/// sessions. Made (64 random bytes) on first start; on the data directory of an older server,
/// which kept it in a file (`legacy_file`, `jwt.key`), that key is adopted instead, so tokens
/// already issued stay valid, and the file is not read again. A key file that group or others
/// can read is refused: anyone who read it can mint tokens for any user.
pub fn signing_key(service: &Service, legacy_file: Option<&Path>) -> Result<Vec<u8>> {
    if let Some(key) = service.stored_server_key(SIGNING_KEY_NAME)? {
        return Ok(key);
    }
    let adopted = match legacy_file {
        Some(path) => read_signing_key_file(path)?,
        None => None,
    };
    let candidate = adopted.clone().unwrap_or_else(|| {
        let mut key = vec![0u8; SIGNING_KEY_BYTES];
        rand::rng().fill(key.as_mut_slice());
        key
    });
    // When several servers start at once, the first key stored wins and all use it.
    let key = service.adopt_server_key(SIGNING_KEY_NAME, &candidate)?;
    match (legacy_file, adopted) {
        (Some(path), Some(adopted)) if adopted == key => tracing::info!(
            path = %path.display(),
            "moved the signing key into the database; the file is no longer read (delete it once no older \
             pilar-server will use this data directory)"
        ),
        _ if key == candidate => tracing::info!("created a new signing key in the database"),
        _ => {}
    }
    Ok(key)
}

/// The key in an older server's signing key file, `None` when there is no such file. A key that
/// group or others can read or write, or a short one, is refused with what to do.
fn read_signing_key_file(path: &Path) -> Result<Option<Vec<u8>>> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read the signing key {}", path.display())),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "the signing key {} is open to group or others (mode {mode:o}); anyone who reads it can sign in as \
                 any user. Run `chmod 600 {}` and start the server again",
                path.display(),
                path.display()
            );
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let key = std::fs::read(path).with_context(|| format!("cannot read the signing key {}", path.display()))?;
    if key.len() < MIN_SIGNING_KEY_BYTES {
        bail!(
            "the signing key {} is too short ({} bytes, at least {MIN_SIGNING_KEY_BYTES} needed); delete it to have a \
             new one made (every device must then log in again)",
            path.display(),
            key.len()
        );
    }
    Ok(Some(key))
}

/// Argon2 checks that run at once. Each holds `m = 19 MiB` of working memory; the memory is
/// allocated once per slot and reused, because freeing and allocating 19 MiB per login fragments
/// the allocator's heap: the server's resident memory grew by about 7 MiB with every login and
/// never came back (`pilar-bench load`). With the pool it is bounded by this count.
const PASSWORD_CHECKS_AT_ONCE: usize = 2;

/// Run `f` with one slot of reusable argon2 working memory of `blocks` blocks, waiting while every
/// slot is busy.
fn with_argon_memory<T>(blocks: usize, f: impl FnOnce(&mut [argon2::Block]) -> T) -> T {
    type Pool = (Mutex<(Vec<Vec<argon2::Block>>, usize)>, Condvar);
    static POOL: OnceLock<Pool> = OnceLock::new();
    let (lock, ready) = POOL.get_or_init(|| (Mutex::new((Vec::new(), 0)), Condvar::new()));
    let mut memory = {
        let mut pool = lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(memory) = pool.0.pop() {
                break memory;
            }
            if pool.1 < PASSWORD_CHECKS_AT_ONCE {
                pool.1 += 1;
                break Vec::new();
            }
            pool = ready.wait(pool).unwrap_or_else(PoisonError::into_inner);
        }
    };
    memory.resize(blocks, argon2::Block::default());
    let result = f(&mut memory);
    lock.lock().unwrap_or_else(PoisonError::into_inner).0.push(memory);
    ready.notify_one();
    result
}

/// The raw argon2 output of `password` with `argon` over `salt`, `len` bytes, in pooled memory.
fn argon_output(argon: &Argon2<'_>, password: &str, salt: &[u8], len: usize) -> Result<Vec<u8>> {
    let mut out = vec![0u8; len];
    with_argon_memory(argon.params().block_count(), |memory| {
        argon.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, memory)
    })
    .map_err(|e| anyhow!("cannot hash a password: {e}"))?;
    Ok(out)
}

/// Hash a password with argon2id (default parameters, random salt) as a PHC string. Slow on
/// purpose: call it through `AppState::blocking`.
pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let argon = Argon2::default();
    let mut salt_buffer = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_buffer).map_err(|e| anyhow!("cannot hash a password: {e}"))?;
    let out = argon_output(&argon, password, salt_bytes, argon2::Params::DEFAULT_OUTPUT_LEN)?;
    let hash = PasswordHash {
        algorithm: argon2::Algorithm::Argon2id.ident(),
        version: Some(argon2::Version::V0x13.into()),
        params: argon2::password_hash::ParamsString::try_from(argon.params())
            .map_err(|e| anyhow!("cannot hash a password: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(argon2::password_hash::Output::new(&out).map_err(|e| anyhow!("cannot hash a password: {e}"))?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `hash`. Slow on purpose, like [`hash_password`].
pub fn verify_password(password: &str, hash: &str) -> bool {
    verify_password_gated(password, Some(hash), &|| true, &|_| {}).unwrap_or(false)
}

/// Check `password` against the PHC string `hash` (`None`: an unknown user, checked against a
/// dummy hash so that response times do not reveal which user names exist, and always wrong),
/// asking `gate` first once one of the few argon2 slots is held: `None` when the gate says no,
/// and argon2 never ran. `settle` is told the outcome while the slot is still held. So a login
/// throttle that `gate` consults and `settle` updates sees every earlier attempt's outcome, even
/// when hundreds of guesses arrive at once: they queue for the slots and all but the first few
/// are turned away without the expensive part.
pub fn verify_password_gated(
    password: &str,
    hash: Option<&str>,
    gate: &dyn Fn() -> bool,
    settle: &dyn Fn(bool),
) -> Option<bool> {
    let known_user = hash.is_some();
    let hash = match hash {
        Some(hash) => hash.to_string(),
        None => dummy_hash().unwrap_or_default(),
    };
    let prepared = || -> Option<(Argon2<'static>, Vec<u8>, argon2::password_hash::Output)> {
        let parsed = PasswordHash::new(&hash).ok()?;
        let params = argon2::Params::try_from(&parsed).ok()?;
        let algorithm = argon2::Algorithm::try_from(parsed.algorithm).ok()?;
        let version = parsed.version.map(argon2::Version::try_from).transpose().ok()?.unwrap_or_default();
        let mut salt_buffer = [0u8; 64];
        let salt = parsed.salt?.decode_b64(&mut salt_buffer).ok()?.to_vec();
        Some((Argon2::new(algorithm, version, params), salt, parsed.hash?))
    };
    let Some((argon, salt, expected)) = prepared() else {
        // A stored hash this build cannot read: never a match, but still throttled.
        if !gate() {
            return None;
        }
        settle(false);
        return Some(false);
    };
    with_argon_memory(argon.params().block_count(), |memory| {
        if !gate() {
            return None;
        }
        let mut out = vec![0u8; expected.len()];
        let computed = argon.hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, memory).is_ok();
        // `Output` compares in constant time.
        let right = known_user && computed && argon2::password_hash::Output::new(&out).is_ok_and(|out| out == expected);
        settle(right);
        Some(right)
    })
}

/// The hash unknown users' passwords are checked against (made once).
fn dummy_hash() -> Option<String> {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("pilar-no-such-user").ok()).clone()
}

/// A random password for a new account, shown once to the admin.
pub fn generate_password() -> String {
    let mut rng = rand::rng();
    (0..GENERATED_PASSWORD_LEN)
        .map(|_| char::from(PASSWORD_ALPHABET[rng.random_range(0..PASSWORD_ALPHABET.len())]))
        .collect()
}

/// Whether `name` is a valid user name: 1–64 of lowercase letters, digits, `.`, `-`, `_`,
/// starting with a letter or digit.
pub fn is_valid_user_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    first_ok
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'))
}

/// A new refresh token: 32 random bytes as hex. Returns the token (for the device) and its hash
/// (for storage).
pub fn new_refresh_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes);
    let token = hex::encode(bytes);
    let hash = hash_refresh_token(&token);
    (token, hash)
}

/// How long after a rotation the previous refresh token still works, and only to get the same
/// successor again: a device whose refresh answer was lost (a flaky link) retries with the token it
/// still holds. Seven days, because devices work offline for days: a tablet that loses the answer
/// at the edge of coverage may next reach the server after a few days in a village without signal,
/// and must not need a password login then. The window is also bounded by use: the moment the
/// device uses the successor, the previous token stops working for good.
pub const REFRESH_RETRY_WINDOW: time::Duration = time::Duration::days(7);

/// How many links down a presented refresh token's chain the server looks for the device's
/// current token, to recognise an old token reused (see [`RefreshKey::later_in_chain`]). A device
/// refreshes at most every access-token lifetime while in use: a thousand links cover weeks.
pub const REUSE_DETECTION_DEPTH: usize = 1000;

/// Name of the refresh-token derivation key among the database's server secrets.
pub const REFRESH_KEY_NAME: &str = "refresh_key";

/// The server's key for deriving the next refresh token from the previous one, so that a retried
/// refresh (answer lost) gets exactly the same successor back without storing tokens in clear.
pub struct RefreshKey(hmac::Hmac<Sha256>);

impl std::fmt::Debug for RefreshKey {
    // Key material never reaches Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshKey(..)")
    }
}

impl RefreshKey {
    /// A key from its bytes (kept in the database, see [`REFRESH_KEY_NAME`]).
    pub fn new(key: &[u8]) -> Result<RefreshKey> {
        use hmac::Mac;
        let mac = hmac::Hmac::<Sha256>::new_from_slice(key)
            .map_err(|e| anyhow!("the refresh-token key cannot be used ({e}); this is a bug in pilar-server"))?;
        Ok(RefreshKey(mac))
    }

    /// The refresh token that follows `token`: HMAC-SHA256 of it under this key, as hex. Returns
    /// the token (for the device) and its hash (for storage), like [`new_refresh_token`].
    pub fn successor(&self, token: &str) -> (String, String) {
        use hmac::Mac;
        let mut mac = self.0.clone();
        mac.update(b"pilar refresh token v1\0");
        mac.update(token.as_bytes());
        let next = hex::encode(mac.finalize().into_bytes());
        let hash = hash_refresh_token(&next);
        (next, hash)
    }
}

impl RefreshKey {
    /// Whether `stored_hash` is the hash of a token at least two links after `token` in its chain
    /// (the successor of its successor, ...), looking [`REUSE_DETECTION_DEPTH`] links down. Called
    /// only for a token that is neither the device's current nor its previous one.
    pub fn later_in_chain(&self, token: &str, stored_hash: &str) -> bool {
        let (mut link, _) = self.successor(token);
        for _ in 1..REUSE_DETECTION_DEPTH {
            let (next, hash) = self.successor(&link);
            if hash == stored_hash {
                return true;
            }
            link = next;
        }
        false
    }
}

/// The stored form of a refresh token: SHA-256 of its text, as hex.
pub fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// `t` in whole unix milliseconds.
pub fn unix_millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user.
    pub sub: String,
    /// The user's role when the token was issued (informational: requests use the stored role).
    pub role: Role,
    /// The device the token was issued to.
    pub dev: DeviceId,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Issued at, in unix milliseconds (tokens from before this claim existed have 0): compared
    /// with the end of the device's sessions, which can fall in the second a token was issued.
    #[serde(default)]
    pub iat_ms: i64,
    /// Expires at (unix seconds).
    pub exp: i64,
}

/// Signs and checks access tokens with the data directory's key.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_lifetime: time::Duration,
}

impl std::fmt::Debug for TokenKeys {
    // Key material never reaches Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys").field("access_lifetime", &self.access_lifetime).finish_non_exhaustive()
    }
}

impl TokenKeys {
    /// Keys for HS256 with `secret`, issuing tokens that live `access_lifetime`.
    pub fn new(secret: &[u8], access_lifetime: time::Duration) -> TokenKeys {
        let mut validation = Validation::new(TOKEN_ALGORITHM);
        validation.algorithms = vec![TOKEN_ALGORITHM];
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "sub"]);
        // Expiry is checked against the server's clock (`verify`), not the system's.
        validation.validate_exp = false;
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_lifetime,
        }
    }

    /// How long an access token lives, in seconds (for `LoginResponse::access_expires_in`).
    pub fn access_lifetime_seconds(&self) -> u64 {
        self.access_lifetime.whole_seconds().max(0) as u64
    }

    /// A new access token for `user` on `device`.
    pub fn issue(&self, user: &str, role: Role, device: DeviceId, now: OffsetDateTime) -> Result<String, ApiError> {
        let claims = AccessClaims {
            sub: user.to_string(),
            role,
            dev: device,
            iat: now.unix_timestamp(),
            iat_ms: unix_millis(now),
            exp: (now + self.access_lifetime).unix_timestamp(),
        };
        jsonwebtoken::encode(&Header::new(TOKEN_ALGORITHM), &claims, &self.encoding).map_err(ApiError::internal)
    }

    /// The claims of `token` if it is signed with our key in HS256 and has not expired at `now`
    /// (with the validation's leeway).
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<AccessClaims, ApiError> {
        let refused = || {
            ApiError::Unauthorized(
                "the access token is invalid or has expired; refresh it or log in again with `pilar login`".to_string(),
            )
        };
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| refused())?;
        if claims.exp.saturating_add(self.validation.leeway as i64) < now.unix_timestamp() {
            return Err(refused());
        }
        Ok(claims)
    }
}

/// The authenticated caller of a request: a valid access token whose device is registered to its
/// user and not revoked. Take it as a handler argument (before any body extractor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user name.
    pub user: String,
    /// The user's current role (from storage).
    pub role: Role,
    /// The calling device (its id is also its Automerge actor).
    pub device: DeviceId,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "this request needs an `Authorization: Bearer <access token>` header; log in with `pilar login`"
                        .to_string(),
                )
            })?;
        let now = state.clock.now();
        let claims = state.tokens.verify(token, now)?;
        let (user, device) = (claims.sub.clone(), claims.dev);
        let lookup_user = user.clone();
        let access = state.blocking(move |service| Ok(service.device_access(device, &lookup_user, now)?)).await?;
        match access {
            DeviceAccess::Active { sessions_ended_at: Some(ended), .. }
                if claims.iat_ms.max(claims.iat.saturating_mul(1000)) < unix_millis(ended) =>
            {
                Err(ApiError::Unauthorized(
                    "this session was ended because the device's refresh token was used twice (a copy may be in \
                     other hands); log in again with `pilar login`"
                        .to_string(),
                ))
            }
            DeviceAccess::Active { role, .. } => Ok(Caller { user, role, device }),
            DeviceAccess::Revoked => {
                tracing::warn!(user, %device, "request from a revoked device");
                Err(ApiError::DeviceRevoked)
            }
            DeviceAccess::Unknown => Err(ApiError::Unauthorized(
                "this device is not registered to this user; log in again with `pilar login`".to_string(),
            )),
        }
    }
}

/// A [`Caller`] whose role is admin; any other role gets 403 `forbidden`.
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.role != Role::Admin {
            return Err(ApiError::Forbidden(format!(
                "only an admin may do this, and {} is {}; ask the kabupaten admin",
                caller.user,
                article(caller.role)
            )));
        }
        Ok(Admin(caller))
    }
}

fn article(role: Role) -> &'static str {
    match role {
        Role::Admin => "an admin",
        Role::Supervisor => "a supervisor",
        Role::Enumerator => "an enumerator",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_password_hashes_match_the_argon2_crate_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        // Stored by earlier servers (the crate's own hasher): still accepted, wrong ones refused.
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let old = Argon2::default().hash_password(b"sandi-lama-12345", &salt).expect("hash").to_string();
        assert!(verify_password("sandi-lama-12345", &old));
        assert!(!verify_password("sandi-lain-12345", &old));
        // Written now: the crate's verifier accepts them, so the format is unchanged.
        let new = hash_password("sandi-baru-12345").expect("hash");
        let parsed = PasswordHash::new(&new).expect("PHC string");
        assert!(Argon2::default().verify_password(b"sandi-baru-12345", &parsed).is_ok());
        assert!(verify_password("sandi-baru-12345", &new));
        assert!(!verify_password("sandi-baru-12346", &new));
        assert!(!verify_password("sandi-baru-12345", "not a phc string"));
    }

    #[test]
    fn password_checks_at_once_share_a_bounded_memory_pool() {
        let threads: Vec<_> = (0..6)
            .map(|i| {
                std::thread::spawn(move || {
                    verify_password(
                        &format!("sandi-{i}-12345"),
                        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                    )
                })
            })
            .collect();
        for t in threads {
            assert!(!t.join().expect("thread"));
        }
    }

    #[test]
    fn user_names_allow_lowercase_digits_and_separators_only() {
        for ok in ["admin", "pkh.bilokka01", "tksk-2", "a_b", "0abc"] {
            assert!(is_valid_user_name(ok), "{ok}");
        }
        for bad in ["", "Admin", "pkh bilokka", ".hidden", "-x", "nama@desa", &"a".repeat(65)] {
            assert!(!is_valid_user_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_password_verifies_only_against_its_own_hash() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterz", &hash));
        assert!(!verify_password("anything", "not a phc string"));
    }

    #[test]
    fn generated_passwords_are_long_and_differ() {
        let (a, b) = (generate_password(), generate_password());
        assert_eq!(a.len(), GENERATED_PASSWORD_LEN);
        assert_ne!(a, b);
    }

    #[test]
    fn tokens_verify_with_their_key_only_and_not_after_expiry() {
        let keys = TokenKeys::new(&[7u8; 64], time::Duration::minutes(15));
        let device = DeviceId::random();
        let now = OffsetDateTime::now_utc();
        let token = keys.issue("pkh.contoh01", Role::Enumerator, device, now).expect("issue");
        let claims = keys.verify(&token, now).expect("valid");
        assert_eq!((claims.sub.as_str(), claims.dev), ("pkh.contoh01", device));

        let other = TokenKeys::new(&[8u8; 64], time::Duration::minutes(15));
        assert!(other.verify(&token, now).is_err(), "another key's token is refused");

        let expired = keys.issue("pkh.contoh01", Role::Enumerator, device, now - time::Duration::hours(1));
        let expired = expired.expect("issue");
        assert!(keys.verify(&expired, now).is_err(), "an expired token is refused");
        assert!(keys.verify(&expired, now - time::Duration::hours(1)).is_ok(), "by the server's clock");

        let hs384 =
            jsonwebtoken::encode(&Header::new(Algorithm::HS384), &claims, &EncodingKey::from_secret(&[7u8; 64]));
        assert!(keys.verify(&hs384.expect("encode"), now).is_err(), "only HS256 is accepted");
    }

    #[test]
    fn a_successor_depends_on_the_token_and_the_key_only() {
        let key = RefreshKey::new(&[1u8; 32]).expect("key");
        let (token, _) = new_refresh_token();
        let (next, hash) = key.successor(&token);
        assert_eq!(key.successor(&token), (next.clone(), hash.clone()), "the same token gets the same successor");
        assert_eq!((next.len(), hash_refresh_token(&next)), (64, hash));
        assert_ne!(key.successor(&next).0, next, "the chain moves on");
        assert_ne!(
            RefreshKey::new(&[2u8; 32]).expect("key").successor(&token).0,
            next,
            "another key, another successor"
        );
        assert_eq!(format!("{key:?}"), "RefreshKey(..)");
    }

    #[test]
    fn a_token_two_or_more_links_back_is_recognised_as_an_older_link() {
        let key = RefreshKey::new(&[3u8; 32]).expect("key");
        let (t0, _) = new_refresh_token();
        let (t1, h1) = key.successor(&t0);
        let (t2, h2) = key.successor(&t1);
        let (_, h3) = key.successor(&t2);
        assert!(!key.later_in_chain(&t0, &h1), "the successor itself is the retry case, not a later link");
        assert!(key.later_in_chain(&t0, &h2) && key.later_in_chain(&t0, &h3));
        assert!(!key.later_in_chain(&t2, &h1), "never backwards");
        assert!(!key.later_in_chain(&new_refresh_token().0, &h3), "another chain");
    }

    #[test]
    fn refresh_tokens_are_stored_as_hashes() {
        let (token, hash) = new_refresh_token();
        assert_eq!(token.len(), 64);
        assert_ne!(token, hash);
        assert_eq!(hash_refresh_token(&token), hash);
    }
}
