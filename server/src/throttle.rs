//! The client address login throttling counts ([`ClientAddress`]); the rule and the counts are
//! `crate::service::throttle` (in the database, shared by every server on it).
//!
//! The client address is the TCP peer. Behind a reverse proxy that is the proxy, so every client
//! shares one address count: give the proxy its own limits, or raise nothing here (forwarded
//! headers are not trusted, since any client can send them).

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

/// The client's address: the TCP peer of the connection (`None` when the server runs without
/// connection info, as in-process router tests do). Behind a reverse proxy this is the proxy.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<ClientAddress, Infallible> {
        Ok(ClientAddress(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| peer.ip())))
    }
}
