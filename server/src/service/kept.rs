//! How documents are handed to storage, and when the database gets the dictionary they are
//! compressed with (`storage::at_rest` compresses; this module decides what and when).
//!
//! Documents are stored as `save_nocompress()`: Automerge's own DEFLATE (of a document's larger
//! columns) hides from zstd the bytes rows share, so zstd with a dictionary keeps the
//! uncompressed form in about a third of what DEFLATE kept. The feed keeps no change bytes of its
//! own: a change's bytes come from its household's document (`service::feed`). The dictionary is
//! first trained on the first write that stores at least [`MIN_SAMPLES`] documents at once (a
//! roster import, a device's first upload): the rows written before it (fewer) stay compressed
//! without one. [`Retrainer`] trains another when rewritten documents stop fitting it.

use crate::storage::{Database, StorageError, Transactions, Tx, at_rest};
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

/// Rewritten documents this process stores before it first asks whether the dictionary still
/// fits them; each later check waits for twice as many, so a server that stays fitted checks
/// rarely and keeps few dictionaries.
pub const RETRAIN_AFTER: u64 = 500;

/// Most rewritten documents kept as samples for the next check (the most recent ones): about
/// 1.3 MB of memory with today's households.
const RETRAIN_SAMPLES: usize = 1000;

/// A new dictionary is stored only when it keeps the held-out samples in at most this share of
/// what the current one does: a smaller gain is not worth a dictionary more (64 KB, loaded by
/// every process that reads a row written with it).
const RETRAIN_GAIN: f64 = 0.8;

/// What [`Retrainer::retrain_if_due`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retrained {
    /// Not enough rewritten documents since the last check (or no dictionary yet).
    NotDue,
    /// A new dictionary was trained and stored.
    Stored {
        /// Its id (zstd's).
        id: u32,
        /// Bytes the held-out samples take with the dictionary before it.
        old: u64,
        /// Bytes they take with the new one.
        new: u64,
    },
    /// The dictionary trained would not have kept the samples small enough: none stored.
    NotBetter {
        /// Bytes the held-out samples take with the current dictionary.
        old: u64,
        /// Bytes they would take with the one trained.
        new: u64,
    },
}

/// Watches the documents sync rewrites and trains a new dictionary when they no longer look like
/// what the current one was trained on. The first dictionary is trained on a household's first
/// state (a roster import, a first upload); visits add changes by other devices, and such
/// documents compress far worse with it (issue 15: 547 B against 306 B with a dictionary trained
/// on them, `pilar-bench sync`'s households after its edits). Rows keep the dictionary they were
/// written with ([`at_rest`] reads every frame with the one it names); writes after a new one use it.
#[derive(Debug, Default)]
pub struct Retrainer {
    state: std::sync::Mutex<RetrainState>,
    /// The check running in the background, if one was started ([`Retrainer::spawn_if_due`]).
    running: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct RetrainState {
    /// Rewritten documents stored since the last check.
    since_check: u64,
    /// How many the next check waits for (0: [`RETRAIN_AFTER`]).
    due: u64,
    /// The most recent rewritten documents, as they are kept before compression.
    samples: std::collections::VecDeque<Vec<u8>>,
}

impl Retrainer {
    /// Note documents of existing households a sync just stored (as `save_nocompress()` gives them).
    pub fn note<'a>(&self, documents: impl IntoIterator<Item = &'a [u8]>) {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for document in documents {
            state.since_check += 1;
            if state.samples.len() == RETRAIN_SAMPLES {
                state.samples.pop_front();
            }
            state.samples.push_back(document.to_vec());
        }
    }

    /// When enough rewritten documents were stored since the last check and the database has a
    /// dictionary: train one on half of the samples, compare both on the other half, and store
    /// the new one if it keeps them in at most [`RETRAIN_GAIN`] of the bytes. Training runs
    /// outside any transaction; the write stores it only if the current dictionary is still the
    /// one it was compared with (another server may have stored one meanwhile).
    pub fn retrain_if_due(&self, db: &dyn Database, now: OffsetDateTime) -> Result<Retrained, StorageError> {
        match self.take_due_samples() {
            Some(samples) => check(&samples, db, now),
            None => Ok(Retrained::NotDue),
        }
    }

    /// [`Retrainer::retrain_if_due`] on a thread of its own, so that no sync request waits for
    /// the training (about 0.1–0.3 s of CPU): sync calls this after each request.
    pub fn spawn_if_due(&self, db: std::sync::Arc<dyn Database>, now: OffsetDateTime) {
        let Some(samples) = self.take_due_samples() else { return };
        let handle = std::thread::spawn(move || {
            // A failure loses nothing (rows keep being written with the current dictionary).
            if let Err(e) = check(&samples, db.as_ref(), now) {
                tracing::warn!(error = %e, "training the compression dictionary again failed");
            }
        });
        let earlier = self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).replace(handle);
        if let Some(earlier) = earlier {
            let _ = earlier.join();
        }
    }

    /// Wait for the check started in the background, if any (tests, so they need not sleep).
    pub fn wait(&self) {
        let running = self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(running) = running {
            let _ = running.join();
        }
    }

    /// The samples to check now, when enough rewritten documents were stored since the last
    /// check (which this starts: the count restarts and the next one waits for twice as many).
    fn take_due_samples(&self) -> Option<Vec<Vec<u8>>> {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let due = if state.due == 0 { RETRAIN_AFTER } else { state.due };
        if state.since_check < due || state.samples.len() < 2 * MIN_SAMPLES {
            return None;
        }
        state.since_check = 0;
        state.due = due.saturating_mul(2);
        Some(state.samples.drain(..).collect())
    }
}

/// Train a dictionary on half of `samples` and store it if it keeps the other half in at most
/// [`RETRAIN_GAIN`] of what the current one needs (see [`Retrainer::retrain_if_due`]).
fn check(samples: &[Vec<u8>], db: &dyn Database, now: OffsetDateTime) -> Result<Retrained, StorageError> {
    let current = db.read(|tx| {
        let Some(id) = tx.current_kept_dictionary()? else { return Ok(None) };
        let bytes = tx
            .kept_dictionary(id)?
            .ok_or_else(|| StorageError::Corrupt(format!("the current compression dictionary {id} is missing")))?;
        Ok(Some((id, bytes, tx.current_kept_dictionary_at()?)))
    })?;
    let Some((current_id, current_bytes, current_at)) = current else {
        return Ok(Retrained::NotDue);
    };
    let (train, held_out): (Vec<&[u8]>, Vec<&[u8]>) = {
        let mut train = Vec::new();
        let mut held_out = Vec::new();
        for (i, sample) in samples.iter().enumerate() {
            if i % 2 == 0 { train.push(sample.as_slice()) } else { held_out.push(sample.as_slice()) }
        }
        (train, held_out)
    };
    let Some((id, dictionary)) = at_rest::train(&train) else {
        return Ok(Retrained::NotDue);
    };
    let old = at_rest::compressed_size(&held_out, &current_bytes);
    let new = at_rest::compressed_size(&held_out, &dictionary);
    if id == current_id || (new as f64) > RETRAIN_GAIN * old as f64 {
        tracing::info!(old, new, "compression dictionary still fits the documents");
        return Ok(Retrained::NotBetter { old, new });
    }
    // Dated after the current one, so that it becomes current whatever the clock says.
    let at = current_at.map_or(now, |t| now.max(t + time::Duration::seconds(1)));
    let stored = db.write(|tx| {
        if tx.current_kept_dictionary()? != Some(current_id) {
            return Ok(false);
        }
        tx.insert_kept_dictionary(id, &dictionary, at)?;
        Ok(true)
    })?;
    if !stored {
        return Ok(Retrained::NotBetter { old, new });
    }
    tracing::info!(id, old, new, samples = held_out.len(), "compression dictionary trained again");
    Ok(Retrained::Stored { id, old, new })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::SqliteDatabase;

    /// A synthetic document-like value (obviously fake names and numbers).
    fn value(n: usize) -> Vec<u8> {
        format!("kepala=Sintetis Contoh {n} nik=0000{n:012} atap={} dinding={} luas={}", n % 5, n % 7, 20 + n % 180)
            .into_bytes()
    }

    #[test]
    fn documents_like_those_the_dictionary_was_trained_on_get_no_new_one() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let db = SqliteDatabase::open(&dir.path().join("server.db")).expect("open");
        let first: Vec<Vec<u8>> = (0..600).map(value).collect();
        let first: Vec<&[u8]> = first.iter().map(Vec::as_slice).collect();
        let now = time::macros::datetime!(2026-11-20 12:00 UTC);
        assert!(db.write(|tx| train_dictionary_if_none(tx, &first, now)).expect("train"));

        let retrainer = Retrainer::default();
        let rewritten: Vec<Vec<u8>> = (600..1000).map(value).collect();
        retrainer.note(rewritten.iter().map(Vec::as_slice));
        assert_eq!(retrainer.retrain_if_due(&db, now).expect("check"), Retrained::NotDue, "400 < 500");
        let more: Vec<Vec<u8>> = (1000..1200).map(value).collect();
        retrainer.note(more.iter().map(Vec::as_slice));
        let checked = retrainer.retrain_if_due(&db, now).expect("check");
        assert!(matches!(checked, Retrained::NotBetter { .. }), "{checked:?}");
        let current = db.read(|tx| tx.current_kept_dictionary()).expect("read");
        let trained = at_rest::train(&first).expect("trained").0;
        assert_eq!(current, Some(trained), "still the first one");
    }
}
