//! Photo bytes in PostgreSQL (`photo_uploads`, `photo_chunks`; migration 0005): what several
//! servers on one database share. An upload is one row with the bytes held from its start and
//! one chunk row per accepted request; an append locks the upload's row (`FOR UPDATE`), so two
//! servers receiving the same photo at once never interleave their bytes, and a chunk is
//! committed before it is acknowledged. Promotion flips `whole` in one statement.

use super::super::StorageError;
use super::super::photos::{Held, PhotoStore};
use r2d2_postgres::PostgresConnectionManager;
use r2d2_postgres::r2d2;
use std::time::Duration;
use sync_core::photo::PhotoId;

/// Connections the photo store keeps at most (besides the database's own pool).
const MAX_CONNECTIONS: u32 = 4;

/// Photos in the PostgreSQL database at one URL.
pub struct PostgresPhotoStore {
    pool: r2d2::Pool<PostgresConnectionManager<postgres::NoTls>>,
}

impl std::fmt::Debug for PostgresPhotoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresPhotoStore").finish_non_exhaustive()
    }
}

impl PostgresPhotoStore {
    /// The photo store of the database at `url` (its schema is brought up to date by
    /// `PostgresDatabase::open`, which the server opens first). Blocking.
    pub fn open(url: &str) -> Result<PostgresPhotoStore, StorageError> {
        let shown = super::redacted(url);
        let config: postgres::Config = url.parse().map_err(|e| {
            StorageError::Backend(format!("the database URL {shown} is not a PostgreSQL connection URL ({e})").into())
        })?;
        let pool = r2d2::Pool::builder()
            .max_size(MAX_CONNECTIONS)
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(30))
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build(PostgresConnectionManager::new(config, postgres::NoTls))
            .map_err(|e| {
                StorageError::Backend(format!("cannot connect to the PostgreSQL database {shown}: {e}").into())
            })?;
        Ok(PostgresPhotoStore { pool })
    }

    fn client(&self) -> Result<r2d2::PooledConnection<PostgresConnectionManager<postgres::NoTls>>, StorageError> {
        self.pool.get().map_err(|e| {
            StorageError::Backend(
                format!("no connection to the PostgreSQL database for photos within 30 s ({e})").into(),
            )
        })
    }
}

fn held_of(row: Option<postgres::Row>) -> Held {
    match row {
        None => Held::Partial(0),
        Some(row) => {
            let held = row.get::<_, i64>(0).max(0) as u64;
            if row.get::<_, bool>(1) { Held::Whole(held) } else { Held::Partial(held) }
        }
    }
}

impl PhotoStore for PostgresPhotoStore {
    fn held(&self, photo: &PhotoId) -> Result<Held, StorageError> {
        let mut client = self.client()?;
        let row = client.query_opt("SELECT held, whole FROM photo_uploads WHERE photo = $1", &[&photo.as_str()])?;
        Ok(held_of(row))
    }

    fn append(&self, photo: &PhotoId, offset: u64, bytes: &[u8]) -> Result<Held, StorageError> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        tx.execute(
            "INSERT INTO photo_uploads (photo, held, whole) VALUES ($1, 0, FALSE) ON CONFLICT (photo) DO NOTHING",
            &[&photo.as_str()],
        )?;
        let row =
            tx.query_opt("SELECT held, whole FROM photo_uploads WHERE photo = $1 FOR UPDATE", &[&photo.as_str()])?;
        match held_of(row) {
            Held::Whole(size) => return Ok(Held::Whole(size)),
            Held::Partial(held) if held != offset => return Ok(Held::Partial(held)),
            Held::Partial(_) => {}
        }
        if bytes.is_empty() {
            return Ok(Held::Partial(offset));
        }
        let start = offset as i64;
        let after = start + bytes.len() as i64;
        tx.execute(
            "INSERT INTO photo_chunks (photo, start, bytes) VALUES ($1, $2, $3)",
            &[&photo.as_str(), &start, &bytes],
        )?;
        tx.execute("UPDATE photo_uploads SET held = $2 WHERE photo = $1", &[&photo.as_str(), &after])?;
        tx.commit()?;
        Ok(Held::Partial(after as u64))
    }

    fn read_partial(&self, photo: &PhotoId, visit: &mut dyn FnMut(&[u8])) -> Result<(), StorageError> {
        let mut client = self.client()?;
        // One chunk in memory at a time: the starts first, then each chunk by its key.
        let starts: Vec<i64> = client
            .query("SELECT start FROM photo_chunks WHERE photo = $1 ORDER BY start", &[&photo.as_str()])?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for start in starts {
            if let Some(row) = client.query_opt(
                "SELECT bytes FROM photo_chunks WHERE photo = $1 AND start = $2",
                &[&photo.as_str(), &start],
            )? {
                visit(row.get::<_, &[u8]>(0));
            }
        }
        Ok(())
    }

    fn promote(&self, photo: &PhotoId) -> Result<(), StorageError> {
        let mut client = self.client()?;
        client.execute("UPDATE photo_uploads SET whole = TRUE WHERE photo = $1", &[&photo.as_str()])?;
        Ok(())
    }

    fn discard_partial(&self, photo: &PhotoId) -> Result<(), StorageError> {
        let mut client = self.client()?;
        client.execute("DELETE FROM photo_uploads WHERE photo = $1 AND NOT whole", &[&photo.as_str()])?;
        Ok(())
    }

    fn read_whole(&self, photo: &PhotoId, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        let mut client = self.client()?;
        let from = offset as i64;
        let to = offset.saturating_add(len).min(i64::MAX as u64) as i64;
        let rows = client.query(
            "SELECT c.start, c.bytes FROM photo_chunks c JOIN photo_uploads u ON u.photo = c.photo
             WHERE c.photo = $1 AND u.whole AND c.start < $3 AND c.start + length(c.bytes) > $2
             ORDER BY c.start",
            &[&photo.as_str(), &from, &to],
        )?;
        let mut out = Vec::new();
        for row in rows {
            let start: i64 = row.get(0);
            let bytes: &[u8] = row.get(1);
            let skip = (from - start).max(0) as usize;
            let end = ((to - start) as usize).min(bytes.len());
            if skip < end {
                out.extend_from_slice(&bytes[skip..end]);
            }
        }
        Ok(out)
    }
}
