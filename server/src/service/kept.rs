//! How documents and changes are handed to storage, and when the database gets the dictionary
//! they are compressed with (`storage::at_rest` compresses; this module decides what and when).
//!
//! Documents are stored as `save_nocompress()` and changes in their uncompressed form: Automerge's
//! own DEFLATE (of a document's larger columns, of a change over 256 bytes) hides from zstd the
//! bytes rows share, so zstd with a dictionary keeps the uncompressed forms in about a third of
//! what DEFLATE kept. The dictionary is trained once, on the first write that stores at least
//! [`MIN_SAMPLES`] documents and changes at once (a roster import, a device's first upload): the
//! rows written before it (fewer) stay compressed without one.

use crate::storage::{StorageError, Tx, at_rest};
use std::borrow::Cow;
use time::OffsetDateTime;

/// Fewest documents and changes one write must store for a dictionary to be trained on them:
/// fewer teach zstd little (and a handful of households may be test data).
pub const MIN_SAMPLES: usize = 200;

/// Most samples a dictionary is trained on: more took longer without a better dictionary.
const MAX_SAMPLES: usize = 2000;

/// A change as the feed keeps it: uncompressed (a compressed change chunk is inflated; anything
/// else is kept as given, and admission already refused what is not a change).
pub fn uncompressed_change(bytes: &[u8]) -> Cow<'_, [u8]> {
    // An Automerge chunk: 4 magic bytes, 4 checksum bytes, then its type (2: a compressed change).
    if bytes.get(8) != Some(&2) {
        return Cow::Borrowed(bytes);
    }
    match automerge::Change::from_bytes(bytes.to_vec()) {
        Ok(change) => Cow::Owned(change.raw_bytes().to_vec()),
        Err(_) => Cow::Borrowed(bytes),
    }
}

/// Train and store the database's compression dictionary from `samples` (documents and changes in
/// the form they are stored, about to be written by `tx`) when it has none and they are at least
/// [`MIN_SAMPLES`]; the writes after it in `tx` use it. Whether one was stored.
pub fn train_dictionary_if_none(tx: &mut dyn Tx, samples: &[&[u8]], now: OffsetDateTime) -> Result<bool, StorageError> {
    if samples.len() < MIN_SAMPLES || tx.current_kept_dictionary()?.is_some() {
        return Ok(false);
    }
    // Spread over the whole write, not its first rows only.
    let step = samples.len().div_ceil(MAX_SAMPLES);
    let chosen: Vec<&[u8]> = samples.iter().step_by(step).copied().collect();
    let Some((id, dictionary)) = at_rest::train(&chosen) else {
        return Ok(false);
    };
    tx.insert_kept_dictionary(id, &dictionary, now)?;
    tracing::info!(id, bytes = dictionary.len(), samples = chosen.len(), "compression dictionary trained");
    Ok(true)
}
