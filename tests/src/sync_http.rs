//! The sync HTTP framing for the tests and the benchmark, in one place: `POST` an encoded sync
//! body with the bearer token and exactly the headers `sync_core::sync::REQUEST_HEADERS` names
//! (zstd CBOR both ways). The e2e scenarios, the load scenario and `pilar-bench` build their sync
//! requests here; `pilar` builds its own from the same constants, because its requests also go
//! through its token refresh and its network-or-refusal error handling (`cli/src/client.rs`).

use reqwest::blocking::{Client, RequestBuilder};
use sync_core::sync::{REQUEST_HEADERS, SYNC_PATH};

/// `POST {base_url}/v1/sync` with an encoded `SyncRequest` (`sync_core::sync::encode`), as every
/// client frames it; not sent yet, so callers time it or read the status as they need.
pub fn sync_request(client: &Client, base_url: &str, token: &str, body: Vec<u8>) -> RequestBuilder {
    with_sync_body(client.post(format!("{base_url}{SYNC_PATH}")).bearer_auth(token), body)
}

/// `request` with a sync body and the sync framing's headers (content type, zstd encoding, accept).
pub fn with_sync_body(request: RequestBuilder, body: Vec<u8>) -> RequestBuilder {
    REQUEST_HEADERS.iter().fold(request, |request, (name, value)| request.header(*name, *value)).body(body)
}
