//! How documents are handed to storage, and when the database gets the dictionary they are
//! compressed with (`storage::at_rest` compresses; this module decides what and when).
//!
//! Documents are stored as `save_nocompress()`: Automerge's own DEFLATE (of a document's larger
//! columns) hides from zstd the bytes rows share, so zstd with a dictionary keeps the
//! uncompressed form in about a third of what DEFLATE kept. The feed keeps no change bytes of its
//! own: a change's bytes come from its household's document (`service::feed`). The dictionary is
//! trained once, on the first write that stores at least [`MIN_SAMPLES`] documents at once (a
//! roster import, a device's first upload): the rows written before it (fewer) stay compressed
//! without one.

use crate::storage::{StorageError, Tx, at_rest};
use time::OffsetDateTime;

/// Fewest documents one write must store for a dictionary to be trained on them:
/// fewer teach zstd little (and a handful of households may be test data).
pub const MIN_SAMPLES: usize = 200;

/// Most samples a dictionary is trained on: more took longer without a better dictionary.
const MAX_SAMPLES: usize = 2000;

/// Train and store the database's compression dictionary from `samples` (documents in the form
/// they are stored, about to be written by `tx`) when it has none and they are at least
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
