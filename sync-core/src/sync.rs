//! The sync protocol: one POST carries a device's outbox and cursors and returns acknowledgements,
//! rejections, the changes it lacks in its villages, new cursors and its scope; first sync of a
//! village uses snapshot packs. Sans-IO: these functions build and read messages; the CLI and the
//! server move the bytes.
//!
//! - `wire`: the messages and their encoding (CBOR, zstd-compressed: binary changes travel as
//!   bytes, never base64).
//! - `admit`: the server's checks on every incoming household batch before anything is stored.
//! - `client`: the device side: build a request from the store, apply a response atomically.
//! - `pack`: snapshot pack pages in the compact form (format 2): changes as rows, one zstd stream.

mod admit;
mod client;
mod pack;
mod wire;

pub use admit::{
    Admitted, Area, CLOCK_SKEW, Operation, PATH_RULES, PathRule, Permission, Pusher, Verdict, admit, path_rule,
};
pub use client::{
    ClientError, PackProgress, REPAIR_PAGE, RepairOutcome, SyncOutcome, apply_compact_pack_page, apply_pack,
    apply_pack_page, apply_repair, apply_response, build_request, repair_request,
};
pub use pack::{
    ChangeRow, CompactHousehold, CompactPackPage, CompactPageBuilder, MAX_COMPACT_PACK, OpRow, PACK_CONTENT_TYPE,
    PACK_LEVEL, Pack, PackError, RowAction, Unpacked, decode_pack, encode_compact,
};
pub use wire::{
    CONTENT_ENCODING, CONTENT_TYPE, DOCUMENTS_PATH, DocumentsRequest, DocumentsResponse, FORMS_PATH, FormsDelivery,
    FormsRequest, PackPage, PackedHousehold, PullHousehold, PushHousehold, REQUEST_HEADERS, Rejection, SYNC_PATH,
    SyncRequest, SyncResponse, WireError, decode, encode,
};
