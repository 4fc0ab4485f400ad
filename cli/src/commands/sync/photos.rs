//! The photo part of `pilar sync`: after the household data has gone and come, each photo the
//! server does not hold whole goes up in chunks (`--chunk-kib`, default
//! [`DEFAULT_CHUNK_BYTES`]), starting from the byte the server says it holds, so an upload cut
//! off halfway resumes there. A photo leaves the device's queue only when the server answers that
//! it holds it whole with its SHA-256 verified.

use crate::client::{Client, ServerRefused};
use anyhow::Result;
use sha2::{Digest, Sha256};
use sync_core::photo::{CHUNK_DIGEST_HEADER, UploadStatus};
use sync_core::store::DeviceStore;

/// What the photo uploads of one sync did.
#[derive(Debug, Default, serde::Serialize)]
pub struct PhotoSummary {
    /// Photos the server now holds whole (sent now or found there already).
    pub photos_uploaded: usize,
    /// Photo bytes sent in this sync (chunks, without headers).
    pub photo_bytes_sent: u64,
    /// Photos still not on the server (kept on the device, sent next time).
    pub photos_unsent: usize,
    /// Their bytes.
    pub photo_bytes_unsent: u64,
}

fn refused_code(error: &anyhow::Error) -> Option<String> {
    error.chain().filter_map(|c| c.downcast_ref::<ServerRefused>()).map(|r| r.body.error.clone()).next()
}

/// Upload every pending photo; a network failure stops the uploads (what arrived is kept by the
/// server, the rest goes next time), a photo the server cannot take yet (its household not there)
/// is left for the next sync.
pub fn upload(client: &mut Client, store: &mut DeviceStore, chunk: u64, summary: &mut PhotoSummary) -> Result<()> {
    let pending = store.pending_photos()?;
    let total: u64 = pending.iter().map(|p| p.size).sum();
    let bar = indicatif::ProgressBar::new(total)
        .with_style(
            indicatif::ProgressStyle::with_template("{msg} {bytes}/{total_bytes} {wide_bar} {bytes_per_sec}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        )
        .with_message("photos");
    let count = pending.len();
    let mut result = Ok(());
    for (i, photo) in pending.into_iter().enumerate() {
        bar.set_message(format!("photo {} of {count} ({} bytes)", i + 1, photo.size));
        let Some(household) = store.photo_household(&photo.id)? else { continue };
        let base = format!("/v1/households/{household}/photos/{}", photo.id);
        let done = (|| -> Result<bool> {
            let mut status: UploadStatus = client.get(&format!("{base}/status"))?;
            while !status.complete {
                let offset = status.held;
                let bytes = store.photo_chunk(&photo.id, offset, chunk)?;
                if bytes.is_empty() {
                    anyhow::bail!("photo {} is shorter on this device than its reference says", photo.id);
                }
                let digest = hex::encode(Sha256::digest(&bytes));
                let url = client.url(&format!("{base}?offset={offset}"));
                let sent = bytes.len() as u64;
                let answer = client.send(|http| {
                    http.put(&url)
                        .header(CHUNK_DIGEST_HEADER, digest.as_str())
                        .header("content-type", "application/octet-stream")
                        .body(bytes.clone())
                });
                match answer {
                    Ok(response) => {
                        summary.photo_bytes_sent += sent;
                        bar.inc(sent);
                        status = serde_json::from_slice(&client.body(response)?)?;
                    }
                    // Someone else's bytes arrived first, or our view was old: ask again.
                    Err(e) if refused_code(&e).as_deref() == Some("photo_offset") => {
                        status = client.get(&format!("{base}/status"))?;
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(true)
        })();
        match done {
            Ok(true) => {
                store.mark_photo_uploaded(&photo.id, super::super::now()?)?;
                summary.photos_uploaded += 1;
            }
            Ok(false) => {}
            // The household has not reached the server (its changes were refused or are still
            // on their way): the photo waits for it.
            Err(e) if refused_code(&e).as_deref() == Some("not_found") => {}
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    bar.finish_and_clear();
    let (unsent, bytes) = store.unsent_photos()?;
    summary.photos_unsent = unsent;
    summary.photo_bytes_unsent = bytes;
    result
}
