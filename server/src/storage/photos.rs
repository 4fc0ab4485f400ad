//! Photo bytes behind the storage seam: content-addressed (SHA-256), an upload grown chunk by
//! chunk from its start, then promoted to a whole photo once the use case above
//! (`service::photos`) has verified its SHA-256. A [`PhotoStore`] moves bytes and decides
//! nothing: which caller may upload or read, the size expected and the verification are the
//! service's.
//!
//! [`FilePhotoStore`] keeps photos as files in the SQLite server's data directory
//! (`photos/<ab>/<sha256>`, uploads in progress in `photos/partial/`): a chunk is appended and
//! fsynced before it is acknowledged; a whole photo is written to a temporary file, fsynced,
//! verified and renamed into place (and the directory fsynced), so a crash never leaves a
//! half-written photo under its address. On PostgreSQL the bytes live in the database, shared by
//! every server on it (`storage/postgres/photos.rs`).

use super::StorageError;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use sync_core::photo::PhotoId;

/// What a store holds of one photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// The whole photo, verified: its size.
    Whole(u64),
    /// An upload in progress: the bytes held from the start.
    Partial(u64),
}

/// Photo bytes, content-addressed; one implementation per backend. Blocking: call it from the
/// blocking pool. Object-safe: the server holds an `Arc<dyn PhotoStore>`.
pub trait PhotoStore: Send + Sync + 'static {
    /// What is held of `photo` (`Partial(0)` when nothing).
    fn held(&self, photo: &PhotoId) -> Result<Held, StorageError>;
    /// Append `bytes` to the upload of `photo` if it holds exactly `offset` bytes now (durable
    /// before returning); returns what is held after. Appending to a whole photo changes nothing.
    fn append(&self, photo: &PhotoId, offset: u64, bytes: &[u8]) -> Result<Held, StorageError>;
    /// Feed the upload's bytes to `visit` in order, a block at a time (memory stays one block).
    fn read_partial(&self, photo: &PhotoId, visit: &mut dyn FnMut(&[u8])) -> Result<(), StorageError>;
    /// Make the verified upload the whole photo, atomically.
    fn promote(&self, photo: &PhotoId) -> Result<(), StorageError>;
    /// Drop the upload in progress (it did not verify).
    fn discard_partial(&self, photo: &PhotoId) -> Result<(), StorageError>;
    /// Up to `len` bytes of the whole photo from `offset`.
    fn read_whole(&self, photo: &PhotoId, offset: u64, len: u64) -> Result<Vec<u8>, StorageError>;
}

fn io(e: std::io::Error) -> StorageError {
    StorageError::Backend(Box::new(e))
}

/// Photos as files in a directory (the SQLite server's data directory).
#[derive(Debug)]
pub struct FilePhotoStore {
    root: PathBuf,
    /// Appends, promotions and discards one at a time (one server per data directory): two devices
    /// uploading the same photo never interleave their bytes.
    writing: Mutex<()>,
}

impl FilePhotoStore {
    /// The store under `root` (created when missing).
    pub fn open(root: &Path) -> Result<FilePhotoStore, StorageError> {
        std::fs::create_dir_all(root.join("partial")).map_err(io)?;
        Ok(FilePhotoStore { root: root.to_path_buf(), writing: Mutex::new(()) })
    }

    fn whole_path(&self, photo: &PhotoId) -> PathBuf {
        self.root.join(&photo.as_str()[..2]).join(photo.as_str())
    }

    fn partial_path(&self, photo: &PhotoId) -> PathBuf {
        self.root.join("partial").join(photo.as_str())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writing.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn size_of(path: &Path) -> Result<Option<u64>, StorageError> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some(m.len())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(e)),
    }
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}

impl PhotoStore for FilePhotoStore {
    fn held(&self, photo: &PhotoId) -> Result<Held, StorageError> {
        if let Some(size) = size_of(&self.whole_path(photo))? {
            return Ok(Held::Whole(size));
        }
        Ok(Held::Partial(size_of(&self.partial_path(photo))?.unwrap_or(0)))
    }

    fn append(&self, photo: &PhotoId, offset: u64, bytes: &[u8]) -> Result<Held, StorageError> {
        let _writing = self.lock();
        match self.held(photo)? {
            Held::Whole(size) => return Ok(Held::Whole(size)),
            Held::Partial(held) if held != offset => return Ok(Held::Partial(held)),
            Held::Partial(_) => {}
        }
        let path = self.partial_path(photo);
        let mut file = OpenOptions::new().create(true).append(true).open(&path).map_err(io)?;
        file.write_all(bytes).map_err(io)?;
        file.sync_data().map_err(io)?;
        if offset == 0 {
            sync_dir(&self.root.join("partial"))?;
        }
        Ok(Held::Partial(offset + bytes.len() as u64))
    }

    fn read_partial(&self, photo: &PhotoId, visit: &mut dyn FnMut(&[u8])) -> Result<(), StorageError> {
        let mut file = File::open(self.partial_path(photo)).map_err(io)?;
        let mut block = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut block).map_err(io)?;
            if n == 0 {
                return Ok(());
            }
            visit(&block[..n]);
        }
    }

    fn promote(&self, photo: &PhotoId) -> Result<(), StorageError> {
        let _writing = self.lock();
        let target = self.whole_path(photo);
        let dir = target.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&dir).map_err(io)?;
        // The upload was fsynced chunk by chunk; the rename makes it whole at once.
        std::fs::rename(self.partial_path(photo), &target).map_err(io)?;
        sync_dir(&dir)?;
        sync_dir(&self.root.join("partial"))
    }

    fn discard_partial(&self, photo: &PhotoId) -> Result<(), StorageError> {
        let _writing = self.lock();
        match std::fs::remove_file(self.partial_path(photo)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
        }
    }

    fn read_whole(&self, photo: &PhotoId, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        let mut file = File::open(self.whole_path(photo)).map_err(io)?;
        file.seek(SeekFrom::Start(offset)).map_err(io)?;
        let mut out = Vec::new();
        file.take(len).read_to_end(&mut out).map_err(io)?;
        Ok(out)
    }
}

/// The rules every [`PhotoStore`] keeps, run by each backend's tests (the file store's below,
/// PostgreSQL's in `server/tests/postgres_conformance.rs`): an upload grows only at its end, a
/// repeated chunk or a gap changes nothing, promotion makes it whole, a discard drops only an
/// upload in progress, and ranges read back exactly.
pub fn check_photo_store(store: &dyn PhotoStore) {
    let photo = PhotoId::of_bytes(b"abcdef");
    assert_eq!(store.held(&photo).expect("held"), Held::Partial(0));
    assert_eq!(store.append(&photo, 0, b"abc").expect("append"), Held::Partial(3));
    assert_eq!(store.append(&photo, 0, b"abc").expect("repeat"), Held::Partial(3), "a repeated chunk is ignored");
    assert_eq!(store.append(&photo, 5, b"f").expect("gap"), Held::Partial(3), "a gap is refused");
    assert_eq!(store.append(&photo, 3, b"def").expect("append"), Held::Partial(6));
    let mut seen = Vec::new();
    store.read_partial(&photo, &mut |b| seen.extend_from_slice(b)).expect("read");
    assert_eq!(seen, b"abcdef");
    store.promote(&photo).expect("promote");
    assert_eq!(store.held(&photo).expect("held"), Held::Whole(6));
    assert_eq!(store.read_whole(&photo, 2, 3).expect("read"), b"cde");
    assert_eq!(store.read_whole(&photo, 0, 100).expect("read"), b"abcdef");
    assert_eq!(store.read_whole(&photo, 4, 100).expect("read"), b"ef");
    assert_eq!(store.append(&photo, 0, b"zzz").expect("whole"), Held::Whole(6));
    store.discard_partial(&photo).expect("discard of a whole photo");
    assert_eq!(store.held(&photo).expect("held"), Held::Whole(6), "a discard never drops a whole photo");

    let damaged = PhotoId::of_bytes(b"xyz");
    assert_eq!(store.append(&damaged, 0, b"xy").expect("append"), Held::Partial(2));
    store.discard_partial(&damaged).expect("discard");
    assert_eq!(store.held(&damaged).expect("held"), Held::Partial(0), "a discarded upload starts again");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_grows_only_at_its_end_and_becomes_whole_when_promoted() {
        let dir = tempfile::tempdir().expect("dir");
        let store = FilePhotoStore::open(dir.path()).expect("store");
        check_photo_store(&store);
    }
}
