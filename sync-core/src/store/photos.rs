//! Photos on the device: their bytes, kept in the store itself (one SQLite file: a photo is
//! written in the same transaction as the household reference that names it, and wiping the store
//! wipes every photo with it), which households reference each, and the upload queue (photos the
//! server does not yet hold whole).

use super::{DeviceStore, StoreError, StoreTx};
use crate::model::HouseholdId;
use crate::photo::{Mime, PhotoId, PhotoKind};
use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

/// Added in schema 5 (also part of a new store).
pub(super) const SCHEMA_5: &str = r#"
CREATE TABLE photos (
    sha256 TEXT PRIMARY KEY,
    mime TEXT NOT NULL,
    size INTEGER NOT NULL,
    data BLOB NOT NULL,
    added_at TEXT NOT NULL,
    uploaded_at TEXT
);
CREATE TABLE photo_refs (
    household_id TEXT NOT NULL REFERENCES households (id) ON DELETE CASCADE,
    sha256 TEXT NOT NULL REFERENCES photos (sha256),
    kind TEXT NOT NULL,
    PRIMARY KEY (household_id, sha256)
) WITHOUT ROWID;
CREATE INDEX photo_refs_sha256 ON photo_refs (sha256);
"#;

/// A photo this device attached, as `pilar photo list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredPhoto {
    /// Its content address.
    pub id: PhotoId,
    /// The household it is attached to.
    pub household: HouseholdId,
    /// What it shows.
    pub kind: PhotoKind,
    /// Its type.
    pub mime: Mime,
    /// Its size in bytes.
    pub size: u64,
    /// When the server confirmed it holds the whole photo (RFC 3339), if it has.
    pub uploaded_at: Option<String>,
}

/// A photo waiting to be uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPhoto {
    /// Its content address.
    pub id: PhotoId,
    /// Its type.
    pub mime: Mime,
    /// Its size in bytes.
    pub size: u64,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("a stored photo has {what}"))
}

impl StoreTx<'_> {
    /// Keep a photo's bytes (once per content address) and record that `household` references
    /// it as `kind`. Returns whether the bytes were new to the store.
    pub fn keep_photo(
        &self,
        household: HouseholdId,
        id: &PhotoId,
        mime: Mime,
        kind: PhotoKind,
        bytes: &[u8],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let new = self.conn().execute(
            "INSERT OR IGNORE INTO photos (sha256, mime, size, data, added_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id.as_str(), mime.as_str(), bytes.len() as i64, bytes, crate::model::rfc3339_seconds(now)],
        )? == 1;
        self.conn().execute(
            "INSERT OR IGNORE INTO photo_refs (household_id, sha256, kind) VALUES (?1, ?2, ?3)",
            params![household.to_string(), id.as_str(), kind.as_str()],
        )?;
        Ok(new)
    }
}

impl DeviceStore {
    /// The photos attached on this device, to one household or to all, oldest first.
    pub fn photos(&self, household: Option<HouseholdId>) -> Result<Vec<StoredPhoto>, StoreError> {
        let mut stmt = self.conn().prepare(
            "SELECT p.sha256, r.household_id, r.kind, p.mime, p.size, p.uploaded_at
             FROM photo_refs r JOIN photos p ON p.sha256 = r.sha256
             WHERE ?1 IS NULL OR r.household_id = ?1 ORDER BY p.rowid, r.household_id",
        )?;
        let rows = stmt.query_map(params![household.map(|h| h.to_string())], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, Option<String>>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, household, kind, mime, size, uploaded_at) = row?;
            out.push(StoredPhoto {
                id: id.parse().map_err(|_| corrupt("a bad address"))?,
                household: household.parse().map_err(|_| corrupt("a bad household id"))?,
                kind: PhotoKind::parse(&kind).ok_or_else(|| corrupt("an unknown kind"))?,
                mime: Mime::parse(&mime).ok_or_else(|| corrupt("an unknown type"))?,
                size: size as u64,
                uploaded_at,
            });
        }
        Ok(out)
    }

    /// A photo's whole bytes, if the store holds it.
    pub fn photo_bytes(&self, id: &PhotoId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT data FROM photos WHERE sha256 = ?1", params![id.as_str()], |r| r.get(0))
            .optional()?)
    }

    /// `len` bytes of a photo from `offset` (fewer at its end): one upload chunk, read without
    /// loading the whole photo into memory.
    pub fn photo_chunk(&self, id: &PhotoId, offset: u64, len: u64) -> Result<Vec<u8>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT substr(data, ?2, ?3) FROM photos WHERE sha256 = ?1",
                params![id.as_str(), offset as i64 + 1, len as i64],
                |r| r.get::<_, Option<Vec<u8>>>(0),
            )
            .optional()?
            .flatten()
            .unwrap_or_default())
    }

    /// A household that references `photo` (its upload is addressed through it).
    pub fn photo_household(&self, photo: &PhotoId) -> Result<Option<HouseholdId>, StoreError> {
        let id: Option<String> = self
            .conn()
            .query_row(
                "SELECT household_id FROM photo_refs WHERE sha256 = ?1 ORDER BY household_id LIMIT 1",
                params![photo.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        id.map(|id| id.parse().map_err(|_| corrupt("a bad household id"))).transpose()
    }

    /// Photos the server does not yet hold whole, in the order they were attached.
    pub fn pending_photos(&self) -> Result<Vec<PendingPhoto>, StoreError> {
        let mut stmt =
            self.conn().prepare("SELECT sha256, mime, size FROM photos WHERE uploaded_at IS NULL ORDER BY rowid")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, mime, size) = row?;
            out.push(PendingPhoto {
                id: id.parse().map_err(|_| corrupt("a bad address"))?,
                mime: Mime::parse(&mime).ok_or_else(|| corrupt("an unknown type"))?,
                size: size as u64,
            });
        }
        Ok(out)
    }

    /// How many photos, and how many bytes of them, the server does not yet hold whole.
    pub fn unsent_photos(&self) -> Result<(usize, u64), StoreError> {
        let (count, bytes): (i64, i64) = self.conn().query_row(
            "SELECT count(*), coalesce(sum(size), 0) FROM photos WHERE uploaded_at IS NULL",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((count as usize, bytes as u64))
    }

    /// Record that the server holds the whole photo (verified by its SHA-256): it leaves the queue.
    pub fn mark_photo_uploaded(&mut self, id: &PhotoId, now: OffsetDateTime) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE photos SET uploaded_at = ?2 WHERE sha256 = ?1 AND uploaded_at IS NULL",
            params![id.as_str(), crate::model::rfc3339_seconds(now)],
        )?;
        Ok(())
    }
}

/// Photos of `village`'s households not yet uploaded: while there are any, the village stays.
pub(super) fn unsent_in_village(conn: &rusqlite::Connection, village: &str) -> Result<i64, StoreError> {
    Ok(conn.query_row(
        "SELECT count(*) FROM photo_refs r JOIN households h ON h.id = r.household_id
         JOIN photos p ON p.sha256 = r.sha256 WHERE h.village = ?1 AND p.uploaded_at IS NULL",
        params![village],
        |r| r.get(0),
    )?)
}

/// Delete photos no household references any more (after a purge).
pub(super) fn drop_unreferenced(conn: &rusqlite::Connection) -> Result<usize, StoreError> {
    Ok(conn.execute("DELETE FROM photos WHERE sha256 NOT IN (SELECT sha256 FROM photo_refs)", [])?)
}
