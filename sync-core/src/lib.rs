//! Pilar's shared core: everything the tablet, the CLI and the server agree on.
//!
//! Crate map:
//! - [`ids`]: Indonesian identifiers (NIK, KK number, Kemendagri region codes) and the region table.
//! - [`form`]: questionnaires as data (versioned JSON definitions) and their validation.
//! - [`value`], [`finding`]: the scalar answer type and the verdict type shared by both.
//! - [`model`]: the household document on Automerge: answers, members, visits, review, links.
//! - [`photo`]: photo files (JPEG/PNG checked by content), their SHA-256 address and kinds.
//! - [`store`]: the device store on SQLite: documents, search columns, outbox, cursors.
//! - [`entry`]: one save action → one validated change in the store (what the CLI and app call).
//! - [`roster`]: roster import: households read from an admin's CSV/XLSX list, and their checks.
//! - [`protocol`]: wire types shared by the CLI and the server (roles, login, errors, sync).
//! - [`sync`]: the sync protocol: wire messages, the server's admission checks, the device side.
//! - [`exchange`]: moving changes between stores (the core the sync server builds on).
//!
//! This crate knows nothing of HTTP, async runtimes or tokens, and it never reads the wall clock:
//! callers pass the time in, so every behaviour is deterministic under test.

pub mod entry;
pub mod exchange;
pub mod finding;
pub mod form;
pub mod ids;
pub mod model;
pub mod photo;
pub mod protocol;
pub mod roster;
pub mod store;
pub mod sync;
pub mod value;
