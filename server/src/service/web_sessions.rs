//! Sessions of the office web page (issue 18): a random token in an HttpOnly cookie, kept in the
//! database only as its SHA-256 (so every server on the database knows the session and a copy of
//! the database signs nobody in), an anti-forgery token per session, an absolute end and an idle
//! end. Only supervisors and admins hold one; each use checks the user still exists with that
//! role, so changing a user's role or removing them ends their sessions at once.

use super::Service;
use crate::storage::{StorageError, Transactions, UserRecord, WebSessionRow};
use rand::Rng;
use sha2::{Digest, Sha256};
use sync_core::protocol::Role;
use time::{Duration, OffsetDateTime};

/// A session ends this long after sign-in, used or not.
pub const WEB_SESSION_LIFETIME: Duration = Duration::hours(12);
/// A session ends after this long unused.
pub const WEB_SESSION_IDLE: Duration = Duration::hours(2);
/// A session's last use is written at most this often (a page view is otherwise a read).
const TOUCH_EVERY: Duration = Duration::minutes(5);
/// Ended sessions deleted per sign-in, so the table stays small without a background task.
const PRUNE_PER_SIGN_IN: u32 = 32;

/// A signed-in session, as a page handler sees it.
#[derive(Debug, Clone)]
pub struct WebSession {
    /// The user.
    pub user: String,
    /// Their role (supervisor or admin).
    pub role: Role,
    /// The anti-forgery token every state-changing form must carry.
    pub csrf: String,
    /// The SHA-256 of the cookie's token (to end the session).
    pub token_hash: String,
}

/// The SHA-256 of a session token, as stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_text(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill(&mut buffer[..]);
    hex::encode(buffer)
}

/// Whether a role may use the office web page.
pub fn may_use_office(role: Role) -> bool {
    matches!(role, Role::Supervisor | Role::Admin)
}

impl Service {
    /// Start a session for `user` (whose password was checked); returns the cookie's token.
    pub fn start_web_session(
        &self,
        user: &UserRecord,
        now: OffsetDateTime,
    ) -> Result<(String, WebSession), StorageError> {
        let token = random_text(32);
        let row = WebSessionRow {
            token_hash: token_hash(&token),
            user: user.name.clone(),
            csrf: random_text(24),
            created_at: now,
            expires_at: now + WEB_SESSION_LIFETIME,
            seen_at: now,
        };
        self.db.write(|tx| {
            tx.prune_web_sessions(now, now - WEB_SESSION_IDLE, PRUNE_PER_SIGN_IN)?;
            tx.insert_web_session(&row)
        })?;
        let session = WebSession { user: row.user, role: user.role, csrf: row.csrf, token_hash: row.token_hash };
        Ok((token, session))
    }

    /// The live session a cookie's token names, if any: not past its end, not idle too long, its
    /// user still a supervisor or admin. A use more than a few minutes after the last is recorded.
    pub fn web_session(&self, token: &str, now: OffsetDateTime) -> Result<Option<WebSession>, StorageError> {
        let hash = token_hash(token);
        let found = self.db.read(|tx| {
            let Some(row) = tx.web_session(&hash)? else { return Ok(None) };
            let user = tx.user(&row.user)?;
            Ok(Some((row, user)))
        })?;
        let Some((row, Some(user))) = found else { return Ok(None) };
        if row.expires_at <= now || row.seen_at + WEB_SESSION_IDLE <= now || !may_use_office(user.role) {
            return Ok(None);
        }
        if now - row.seen_at >= TOUCH_EVERY {
            self.db.write(|tx| tx.touch_web_session(&hash, now))?;
        }
        Ok(Some(WebSession { user: row.user, role: user.role, csrf: row.csrf, token_hash: hash }))
    }

    /// End a session (sign-out).
    pub fn end_web_session(&self, token_hash: &str) -> Result<(), StorageError> {
        self.db.write(|tx| tx.delete_web_session(token_hash))
    }

    /// End every web session of `user` (a password reset, a role change).
    pub fn end_web_sessions_of(&self, user: &str) -> Result<u64, StorageError> {
        self.db.write(|tx| tx.delete_web_sessions_of(user))
    }
}
