//! Photos of households: who may upload or read one (the scope rules of `service::scope`, on the
//! household that references it), the resumable chunked upload, and the SHA-256 verification
//! that decides whether an upload becomes a photo. The bytes live behind
//! [`crate::storage::photos::PhotoStore`].
//!
//! A photo is addressed through a household (`/v1/households/{id}/photos/{sha256}`): the caller
//! must be allowed that household, and the household must reference the photo, so a photo is
//! served only to those whose scope holds a household that references it, and a merged
//! household's photos are served through its survivor (the fold copies the references). The
//! household reference gives the size and type; bytes are stored once per SHA-256 whichever
//! household or device sends them. The references are read from the household's document once
//! per document version (`photo_refs.rs`), not once per chunk.

use super::Service;
use super::photo_refs::References;
use crate::auth::Caller;
use crate::storage::photos::{Held, PhotoStore};
use crate::storage::{StorageError, Transactions};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use sync_core::model::{Household, HouseholdId, PhotoRef};
use sync_core::photo::{ListedPhoto, PhotoId, UploadStatus};
use sync_core::protocol::Role;
use time::OffsetDateTime;

/// Why a chunk or an upload was refused, beyond storage errors.
#[derive(Debug, thiserror::Error)]
pub enum PhotoRefusal {
    /// Storage or scope.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The chunk starts after what the server holds: send from `held`.
    #[error("the server holds {held} bytes of photo {photo}; send the next chunk from byte {held}")]
    Offset {
        /// The photo.
        photo: PhotoId,
        /// What the server holds.
        held: u64,
    },
    /// The whole upload's SHA-256 is not its address: it was discarded.
    #[error(
        "the {bytes} bytes uploaded for photo {photo} do not have that SHA-256; the upload was discarded and nothing is served: send the photo again from byte 0"
    )]
    Mismatch {
        /// The photo.
        photo: PhotoId,
        /// How many bytes were received.
        bytes: u64,
    },
}

impl Service {
    /// Check that `caller` may see household `id`: enumerators their villages (and ended ones
    /// still taking pending work), supervisors and admins their areas. The same rules as sync and
    /// supervision (`scope.rs`); refusals name nothing outside the caller's scope.
    fn check_photo_scope(
        &self,
        caller: &Caller,
        id: HouseholdId,
        grace: time::Duration,
        now: OffsetDateTime,
    ) -> Result<(), StorageError> {
        match caller.role {
            Role::Enumerator => {
                let scope = self.sync_caller(caller, grace, now)?;
                let village = self.household_village(id)?.ok_or_else(|| household_not_found(id))?;
                if !scope.may_read(&village) {
                    return Err(StorageError::Forbidden(format!(
                        "household {id} is not in your villages; only devices working in its village send or read its photos"
                    )));
                }
                Ok(())
            }
            Role::Supervisor | Role::Admin => self.may_act(caller, id, "read photos"),
        }
    }

    /// The photo references of household `id` for `caller` (scope checked first): kept ones
    /// when its document has not moved since they were read (`photo_refs.rs`), else read from
    /// the document.
    fn photo_references(
        &self,
        caller: &Caller,
        id: HouseholdId,
        grace: time::Duration,
        now: OffsetDateTime,
    ) -> Result<References, StorageError> {
        self.check_photo_scope(caller, id, grace, now)?;
        let heads = self.db.read(|tx| tx.household_heads(id))?.ok_or_else(|| household_not_found(id))?;
        if let Some(kept) = self.photo_refs.get(id, &heads) {
            return Ok(kept);
        }
        let row = self.db.read(|tx| tx.household(id))?.ok_or_else(|| household_not_found(id))?;
        let household = Household::load(id, &row.doc, caller.device)
            .map_err(|e| StorageError::Corrupt(format!("household {id} does not load: {e}")))?;
        let references: References = Arc::new(household.state().photos);
        self.photo_refs.put(id, row.heads, references.clone());
        Ok(references)
    }

    /// The reference household `id` holds to `photo`, checked for `caller`.
    fn photo_reference(
        &self,
        caller: &Caller,
        id: HouseholdId,
        photo: &PhotoId,
        grace: time::Duration,
        now: OffsetDateTime,
    ) -> Result<PhotoRef, StorageError> {
        let references = self.photo_references(caller, id, grace, now)?;
        references.get(photo.as_str()).cloned().ok_or_else(|| {
            StorageError::NotFound(format!(
                "household {id} has no photo {photo}; attach it with `pilar photo add` and sync the household first"
            ))
        })
    }

    /// What the server holds of `photo` of household `id`.
    pub fn photo_status(
        &self,
        photos: &dyn PhotoStore,
        caller: &Caller,
        id: HouseholdId,
        photo: &PhotoId,
        grace: time::Duration,
        now: OffsetDateTime,
    ) -> Result<UploadStatus, StorageError> {
        let reference = self.photo_reference(caller, id, photo, grace, now)?;
        Ok(status(photo, &reference, photos.held(photo)?))
    }

    /// Take one chunk of `photo` starting at `offset`. A chunk the server already holds is
    /// harmless (the answer says what is held); a chunk after a gap is refused with what is held.
    /// When the last byte arrives the whole upload's SHA-256 is checked: a match makes it the
    /// photo, anything else is discarded and never served.
    #[expect(clippy::too_many_arguments, reason = "one use case: who, which photo, which bytes, when")]
    pub fn photo_chunk(
        &self,
        photos: &dyn PhotoStore,
        caller: &Caller,
        id: HouseholdId,
        photo: &PhotoId,
        offset: u64,
        chunk: &[u8],
        grace: time::Duration,
        now: OffsetDateTime,
    ) -> Result<UploadStatus, PhotoRefusal> {
        let reference = self.photo_reference(caller, id, photo, grace, now)?;
        let size = reference.bytes.max(0) as u64;
        let end = offset.saturating_add(chunk.len() as u64);
        if end > size {
            return Err(StorageError::Refused(format!(
                "the chunk ends at byte {end}, after the end of photo {photo} ({size} bytes, as the household records it)"
            ))
            .into());
        }
        let held = match photos.held(photo)? {
            Held::Whole(_) => return Ok(status(photo, &reference, photos.held(photo)?)),
            Held::Partial(held) => held,
        };
        if offset > held {
            return Err(PhotoRefusal::Offset { photo: photo.clone(), held });
        }
        // Only the part beyond what is held is new (a repeated chunk adds nothing).
        let fresh = &chunk[(held - offset).min(chunk.len() as u64) as usize..];
        let mut now_held = photos.held(photo)?;
        if !fresh.is_empty() {
            now_held = photos.append(photo, held, fresh)?;
        }
        if now_held == Held::Partial(size) {
            let mut hash = Sha256::new();
            photos.read_partial(photo, &mut |block| hash.update(block))?;
            if PhotoId::from_digest(&hash.finalize()) != *photo {
                photos.discard_partial(photo)?;
                tracing::warn!(photo = %photo, bytes = size, "photo upload discarded: its SHA-256 does not match");
                return Err(PhotoRefusal::Mismatch { photo: photo.clone(), bytes: size });
            }
            photos.promote(photo)?;
            now_held = photos.held(photo)?;
        }
        Ok(status(photo, &reference, now_held))
    }

    /// The reference and size of `photo` of household `id`, for a caller allowed that household,
    /// once the whole photo has arrived and verified (not found before): what a download needs
    /// before it streams the bytes from the store, a block at a time.
    pub fn photo_download(
        &self,
        photos: &dyn PhotoStore,
        caller: &Caller,
        id: HouseholdId,
        photo: &PhotoId,
        grace: time::Duration,
        now: OffsetDateTime,
    ) -> Result<(PhotoRef, u64), StorageError> {
        let reference = self.photo_reference(caller, id, photo, grace, now)?;
        match photos.held(photo)? {
            Held::Whole(size) => Ok((reference, size)),
            Held::Partial(_) => Err(StorageError::NotFound(format!(
                "photo {photo} of household {id} has not reached the server yet; the device that took it uploads it on its next sync"
            ))),
        }
    }

    /// The photos household `id` references, for a caller allowed it.
    pub fn household_photos(
        &self,
        photos: &dyn PhotoStore,
        caller: &Caller,
        id: HouseholdId,
        grace: time::Duration,
        now: OffsetDateTime,
    ) -> Result<Vec<ListedPhoto>, StorageError> {
        let references = self.photo_references(caller, id, grace, now)?;
        let mut out = Vec::new();
        for (key, reference) in references.iter() {
            let Ok(photo) = key.parse::<PhotoId>() else { continue };
            let uploaded = matches!(photos.held(&photo)?, Held::Whole(_));
            out.push(ListedPhoto { photo, reference: reference.clone(), uploaded });
        }
        Ok(out)
    }
}

fn household_not_found(id: HouseholdId) -> StorageError {
    StorageError::NotFound(format!("no household {id} on the server; sync the household before its photos"))
}

fn status(photo: &PhotoId, reference: &PhotoRef, held: Held) -> UploadStatus {
    let bytes = reference.bytes.max(0) as u64;
    match held {
        Held::Whole(size) => UploadStatus { photo: photo.clone(), bytes, held: size, complete: true },
        Held::Partial(held) => UploadStatus { photo: photo.clone(), bytes, held, complete: false },
    }
}
