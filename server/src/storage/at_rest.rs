//! How household documents and feed changes are kept at rest, written once for every backend:
//! each one a zstd frame (level 3), compressed with the database's dictionary once it has one.
//!
//! Documents and changes are small (a few hundred bytes to a few KB) and share most of their bytes
//! with each other (field names, the questionnaire's structure), which one row alone cannot
//! exploit: zstd of one row saves almost nothing, zstd with a dictionary trained on the database's
//! own rows keeps them at about a third (issue 15, server disk). A dictionary is trained
//! (`service::kept`: first on households' first state, again when rewritten documents stop
//! fitting it) and stored in `kept_dictionaries` under the id zstd gives it, which every
//! frame compressed with it names in its header, so a row is read with the dictionary it was
//! written with whatever dictionaries come later.
//!
//! A stored value that is not a zstd frame is kept as it was written before this module existed
//! (raw Automerge bytes, which begin with Automerge's magic bytes, never zstd's): it is read as it
//! is, so a database from an older server opens and serves unchanged. [`decode`] of [`encode`]
//! gives back exactly the bytes given, whatever they are: backends move bytes, the codec never
//! looks into them.

use super::StorageError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use zstd::dict::{DecoderDictionary, EncoderDictionary};

/// The zstd level rows are written at: what a server can afford on every sync.
const LEVEL: i32 = 3;

/// The size of a trained dictionary: larger gained 9 % on `pilar-bench sync`'s households, smaller
/// lost 10 %; it is read once per process.
const DICTIONARY_SIZE: usize = 64 * 1024;

/// The first bytes of every zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Largest value [`decode`] inflates: far above any document (a household is a few KB), so only a
/// damaged row reaches it.
const MAX_VALUE: usize = 256 * 1024 * 1024;

/// A dictionary ready for both directions (preparing one costs more than compressing a row).
struct Prepared {
    encoder: EncoderDictionary<'static>,
    decoder: DecoderDictionary<'static>,
}

/// Dictionaries read in this process, by id. The id is zstd's, derived from the dictionary's
/// content, so one id names one dictionary in every database this process opens.
fn prepared() -> &'static Mutex<HashMap<u32, Arc<Prepared>>> {
    static PREPARED: OnceLock<Mutex<HashMap<u32, Arc<Prepared>>>> = OnceLock::new();
    PREPARED.get_or_init(Default::default)
}

/// The dictionary `id`, prepared, reading its bytes with `load` the first time.
fn dictionary(
    id: u32,
    load: &mut dyn FnMut(u32) -> Result<Option<Vec<u8>>, StorageError>,
) -> Result<Arc<Prepared>, StorageError> {
    if let Some(found) = prepared().lock().expect("dictionaries").get(&id) {
        return Ok(found.clone());
    }
    let bytes = load(id)?.ok_or_else(|| {
        StorageError::Corrupt(format!(
            "a stored value names compression dictionary {id}, which the database does not hold"
        ))
    })?;
    let ready = Arc::new(Prepared {
        encoder: EncoderDictionary::copy(&bytes, LEVEL),
        decoder: DecoderDictionary::copy(&bytes),
    });
    prepared().lock().expect("dictionaries").insert(id, ready.clone());
    Ok(ready)
}

/// `value` as it is kept: a zstd frame, with dictionary `current` when the database has one
/// (`load` reads a dictionary's bytes by id).
pub fn encode(
    value: &[u8],
    current: Option<u32>,
    load: &mut dyn FnMut(u32) -> Result<Option<Vec<u8>>, StorageError>,
) -> Result<Vec<u8>, StorageError> {
    // Nothing stays nothing (a feed row whose bytes its document holds): no frame around it.
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let compressed = match current {
        None => zstd::bulk::compress(value, LEVEL),
        Some(id) => {
            let ready = dictionary(id, load)?;
            zstd::bulk::Compressor::with_prepared_dictionary(&ready.encoder).and_then(|mut c| c.compress(value))
        }
    };
    compressed.map_err(|e| StorageError::Backend(Box::new(e)))
}

/// The value `stored` keeps: inflated with the dictionary its frame names, or as it is when it is
/// no zstd frame (written before values were compressed).
pub fn decode(
    stored: Vec<u8>,
    load: &mut dyn FnMut(u32) -> Result<Option<Vec<u8>>, StorageError>,
) -> Result<Vec<u8>, StorageError> {
    if !stored.starts_with(&ZSTD_MAGIC) {
        return Ok(stored);
    }
    let damaged = |what: String| StorageError::Corrupt(format!("a stored document or change does not inflate: {what}"));
    let size = zstd::zstd_safe::get_frame_content_size(&stored)
        .map_err(|e| damaged(format!("{e:?}")))?
        .ok_or_else(|| damaged("its frame declares no size".into()))?;
    let size = usize::try_from(size)
        .ok()
        .filter(|s| *s <= MAX_VALUE)
        .ok_or_else(|| damaged(format!("{size} bytes declared")))?;
    let id = zstd::zstd_safe::get_dict_id_from_frame(&stored).map_or(0, |id| id.get());
    let inflated = if id == 0 {
        zstd::bulk::decompress(&stored, size)
    } else {
        let ready = dictionary(id, load)?;
        zstd::bulk::Decompressor::with_prepared_dictionary(&ready.decoder).and_then(|mut d| d.decompress(&stored, size))
    };
    inflated.map_err(|e| damaged(e.to_string()))
}

/// A dictionary trained on `samples` (documents and changes as they will be kept, uncompressed),
/// with its id; `None` when zstd finds too little in them to train on.
pub fn train(samples: &[&[u8]]) -> Option<(u32, Vec<u8>)> {
    let sizes: Vec<usize> = samples.iter().map(|s| s.len()).collect();
    let joined: Vec<u8> = samples.concat();
    let dictionary = zstd::dict::from_continuous(&joined, &sizes, DICTIONARY_SIZE).ok()?;
    let id = zstd::zstd_safe::get_dict_id_from_dict(&dictionary)?.get();
    Some((id, dictionary))
}

/// The bytes `values` take compressed one by one with `dictionary`, as rows are kept: how well a
/// dictionary fits them.
pub fn compressed_size(values: &[&[u8]], dictionary: &[u8]) -> u64 {
    let Ok(mut compressor) = zstd::bulk::Compressor::with_dictionary(LEVEL, dictionary) else {
        return u64::MAX;
    };
    values.iter().map(|v| compressor.compress(v).map_or(u64::MAX / 2, |c| c.len() as u64)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_dictionary(id: u32) -> Result<Option<Vec<u8>>, StorageError> {
        panic!("dictionary {id} asked for")
    }

    #[test]
    fn values_written_before_compression_read_as_they_are() {
        let automerge = vec![0x85, 0x6f, 0x4a, 0x83, 1, 2, 3];
        assert_eq!(decode(automerge.clone(), &mut no_dictionary).expect("decode"), automerge);
    }

    #[test]
    fn any_value_round_trips_with_and_without_a_dictionary() {
        let samples: Vec<Vec<u8>> = (0..400u32)
            .map(|i| {
                format!("{{\"household_size\":{},\"roof\":\"tile\",\"name\":\"Synthetic {i}\"}}", i % 9).into_bytes()
            })
            .collect();
        let refs: Vec<&[u8]> = samples.iter().map(|s| s.as_slice()).collect();
        let (id, bytes) = train(&refs).expect("trained");
        let mut load = |asked: u32| Ok((asked == id).then(|| bytes.clone()));
        for value in [Vec::new(), vec![0x28, 0xb5, 0x2f, 0xfd], samples[7].clone(), vec![0; 100_000]] {
            let plain = encode(&value, None, &mut load).expect("encode");
            assert_eq!(decode(plain, &mut load).expect("decode plain"), value);
            let with = encode(&value, Some(id), &mut load).expect("encode with dictionary");
            assert_eq!(decode(with, &mut load).expect("decode with dictionary"), value);
        }
        let with = encode(&samples[3], Some(id), &mut load).expect("encode");
        let plain = encode(&samples[3], None, &mut load).expect("encode");
        assert!(with.len() < plain.len(), "the dictionary helps: {} vs {} bytes", with.len(), plain.len());
    }

    #[test]
    fn a_value_naming_a_missing_dictionary_is_reported_as_damage() {
        let samples: Vec<Vec<u8>> =
            (0..400u32).map(|i| format!("answer {i} of household {}", i * 7).into_bytes()).collect();
        let refs: Vec<&[u8]> = samples.iter().map(|s| s.as_slice()).collect();
        let (id, bytes) = train(&refs).expect("trained");
        let stored = encode(b"answer 3", Some(id), &mut |_| Ok(Some(bytes.clone()))).expect("encode");
        // A fresh process (no prepared dictionaries) reading a database that lost the row.
        prepared().lock().expect("dictionaries").remove(&id);
        let err = decode(stored, &mut |_| Ok(None)).expect_err("no dictionary");
        assert!(matches!(err, StorageError::Corrupt(ref m) if m.contains(&id.to_string())), "{err}");
    }
}
