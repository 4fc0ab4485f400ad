//! The server-wide cap on bytes being decompressed at once ([`InflateGate`]), so that many
//! compression bombs arriving together cannot exhaust memory: each one is bounded by the per-body
//! expansion limit, and all of them together by the gate's capacity.
//!
//! A compressed sync body reserves, before it is inflated, the size its zstd frame declares (the
//! client's encoder always writes it) or, when the frame does not say, the whole per-body limit.
//! It is then decoded with the reservation as its bound: a frame that lies about its size is
//! refused as it grows past it. The reservation is held until the request is handled, since the
//! decoded request takes about as much memory as the inflated bytes. A request that finds no room
//! waits up to [`InflateGate::wait`]; then it gets 503 `busy` with `Retry-After`, which a device
//! treats as network trouble (its work is kept, it syncs again).

use crate::error::ApiError;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The default capacity: two bodies at the default per-body expansion limit (8 × 16 MiB).
pub const DEFAULT_MAX_INFLATING_BYTES: usize = 256 * 1024 * 1024;

/// How long a request waits for room by default before it gets 503.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// Permits count KiB, so that a reservation of gigabytes fits the semaphore's `u32`.
const UNIT: usize = 1024;

/// The byte budget for decompression shared by every request of one server process.
#[derive(Debug)]
pub struct InflateGate {
    permits: Arc<Semaphore>,
    capacity: usize,
    wait: Duration,
}

/// Room for one body's inflated bytes, given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    bytes: usize,
    _permit: OwnedSemaphorePermit,
}

impl Reservation {
    /// The bytes reserved: the most this body may inflate to.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl InflateGate {
    /// A gate for `capacity` bytes inflated at once (at least 1 MiB), where a request waits at most
    /// `wait` for room.
    pub fn new(capacity: usize, wait: Duration) -> InflateGate {
        let capacity = capacity.max(1024 * 1024);
        InflateGate { permits: Arc::new(Semaphore::new(capacity.div_ceil(UNIT))), capacity, wait }
    }

    /// The capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How long a request waits for room before it is refused.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// Bytes currently reserved by requests (rounded up to KiB per request).
    pub fn reserved(&self) -> usize {
        (self.capacity.div_ceil(UNIT) - self.permits.available_permits()) * UNIT
    }

    /// Reserve room to inflate the zstd `body`, which may expand to at most `limit` bytes: its
    /// declared size, or `limit` when the frame does not declare one, never more than the
    /// capacity. A body declaring more than `limit` is refused at once (400); when no room frees
    /// up within the wait, 503 `busy`.
    pub async fn reserve_for(&self, body: &[u8], limit: usize) -> Result<Reservation, ApiError> {
        let declared = zstd::zstd_safe::get_frame_content_size(body).ok().flatten();
        let needed = match declared {
            Some(size) if size > limit as u64 => {
                return Err(ApiError::Malformed(format!(
                    "the body expands to more than {limit} bytes; send smaller batches"
                )));
            }
            Some(size) => size as usize,
            None => limit,
        };
        self.reserve(needed.min(self.capacity)).await
    }

    /// Reserve `bytes` (at most the capacity), waiting up to the gate's wait for room.
    pub async fn reserve(&self, bytes: usize) -> Result<Reservation, ApiError> {
        let bytes = bytes.min(self.capacity);
        let units = u32::try_from(bytes.div_ceil(UNIT).max(1)).unwrap_or(u32::MAX);
        let acquire = Arc::clone(&self.permits).acquire_many_owned(units);
        match tokio::time::timeout(self.wait, acquire).await {
            Ok(Ok(permit)) => Ok(Reservation { bytes, _permit: permit }),
            // The semaphore is never closed; treat it like a full gate all the same.
            Ok(Err(_)) | Err(_) => {
                tracing::warn!(
                    wanted_bytes = bytes,
                    reserved_bytes = self.reserved(),
                    "request refused: too many bytes being decompressed at once"
                );
                Err(ApiError::Busy { retry_after: self.wait.as_secs().max(1) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    #[tokio::test]
    async fn reservations_never_exceed_the_capacity_and_the_one_over_it_gets_busy() {
        let gate = InflateGate::new(4 * MIB, Duration::from_millis(50));
        let held: Vec<Reservation> = {
            let mut held = Vec::new();
            for _ in 0..4 {
                held.push(gate.reserve(MIB).await.expect("room for four"));
            }
            held
        };
        assert_eq!(gate.reserved(), 4 * MIB);
        let refused = gate.reserve(1).await.expect_err("the gate is full");
        assert!(matches!(refused, ApiError::Busy { retry_after: 1 }), "{refused:?}");
        drop(held);
        assert_eq!(gate.reserved(), 0, "dropping a reservation gives its room back");
        let whole = gate.reserve(100 * MIB).await.expect("a request larger than the gate gets all of it");
        assert_eq!(whole.bytes(), 4 * MIB);
    }

    #[tokio::test]
    async fn a_waiting_request_gets_room_as_soon_as_another_finishes() {
        let gate = Arc::new(InflateGate::new(2 * MIB, Duration::from_secs(60)));
        let first = gate.reserve(2 * MIB).await.expect("room");
        let waiting = {
            let gate = Arc::clone(&gate);
            tokio::spawn(async move { gate.reserve(MIB).await.map(|r| r.bytes()) })
        };
        drop(first);
        assert_eq!(waiting.await.expect("task").expect("room after the first"), MIB);
    }

    #[tokio::test]
    async fn many_bombs_at_once_hold_at_most_the_capacity() {
        // Each bomb declares no size, so each reserves the whole per-body limit (8 MiB) and
        // only two fit the 16 MiB gate at once; the rest wait or are refused.
        let gate = Arc::new(InflateGate::new(16 * MIB, Duration::from_millis(50)));
        let bomb = {
            use std::io::Write;
            let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).expect("encoder");
            encoder.write_all(&vec![0u8; 64 * MIB]).expect("compress");
            encoder.finish().expect("finish")
        };
        assert_eq!(zstd::zstd_safe::get_frame_content_size(&bomb).ok().flatten(), None, "no declared size");
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (gate, bomb) = (Arc::clone(&gate), bomb.clone());
                tokio::spawn(async move {
                    let reservation = gate.reserve_for(&bomb, 8 * MIB).await?;
                    assert!(gate.reserved() <= gate.capacity());
                    let decoded: Result<Vec<u8>, _> = sync_core::sync::decode(&bomb, reservation.bytes());
                    // Held while the (refused) request is handled, as a route does.
                    Ok::<_, ApiError>((reservation, decoded.is_err()))
                })
            })
            .collect();
        let mut admitted = Vec::new();
        let mut busy = 0;
        for task in tasks {
            match task.await.expect("task") {
                Ok((reservation, refused)) => {
                    assert!(refused, "a bomb never decodes past its reservation");
                    admitted.push(reservation);
                }
                Err(ApiError::Busy { .. }) => busy += 1,
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((admitted.len(), busy), (2, 6), "two fit at once, the others were refused");
        assert!(gate.reserved() <= gate.capacity());
    }

    #[tokio::test]
    async fn a_declared_size_is_reserved_and_enforced() {
        let gate = InflateGate::new(64 * MIB, Duration::from_millis(50));
        let body = sync_core::sync::encode(&vec![1u8; 1000]);
        let reservation = gate.reserve_for(&body, 8 * MIB).await.expect("room");
        assert!(reservation.bytes() < 2000, "the declared size, not the limit: {}", reservation.bytes());
        let decoded: Vec<u8> = sync_core::sync::decode(&body, reservation.bytes()).expect("fits its declared size");
        assert_eq!(decoded.len(), 1000);

        let big = zstd::bulk::compress(&vec![0u8; 9 * MIB], 3).expect("compress");
        let refused = gate.reserve_for(&big, 8 * MIB).await.expect_err("declares more than the limit");
        assert!(matches!(refused, ApiError::Malformed(_)), "{refused:?}");

        // A frame that declares a small size but carries another frame after it.
        let mut lying = zstd::bulk::compress(&[0u8; 16], 3).expect("compress");
        lying.extend(zstd::stream::encode_all(&vec![0u8; MIB][..], 3).expect("compress"));
        let reservation = gate.reserve_for(&lying, 8 * MIB).await.expect("room");
        assert!(sync_core::sync::decode::<Vec<u8>>(&lying, reservation.bytes()).is_err(), "stops at the reservation");
    }
}
