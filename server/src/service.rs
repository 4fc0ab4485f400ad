//! The server's use cases, written once above the storage seam (`crate::storage::Database`):
//! sync with its admission flow, packs, roster imports, supervision, folds, exports, progress,
//! derived facts, accounts. Every rule lives here; a backend only moves rows.

pub mod feed;
