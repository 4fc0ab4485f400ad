//! `pilar server`: show the address of the server this device syncs with, or change it after the
//! server moved (another host, a load balancer, a server moved to PostgreSQL with
//! `pilar-server migrate`). The session is kept: no password is asked, and the next sync goes on
//! from the device's cursors with its unsent work.

use super::open_store;
use crate::client;
use anyhow::{Result, bail};
use std::path::Path;

/// Arguments of `pilar server`.
#[derive(clap::Args)]
pub struct Args {
    /// The server's new address, e.g. https://pilar.dinsos.example.go.id (the same server, moved:
    /// its accounts and keys went with it). Without it, print the current address.
    address: Option<String>,
}

/// Print or change the server address.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let mut store = open_store(home)?;
    let Some(mut session) = store.session()? else {
        bail!("this device has not logged in to a server yet; use pilar login --server URL --user NAME");
    };
    let Some(raw) = args.address else {
        println!("{}", session.server);
        return Ok(());
    };
    let server = client::server_url(&raw)?;
    if server.starts_with("http://") && !super::login::is_loopback(&server) {
        eprintln!(
            "warning: {server} is not encrypted (http://); this device's tokens cross the network readable. Use https://."
        );
    }
    let old = std::mem::replace(&mut session.server, server.clone());
    store.set_session(&session)?;
    println!("this device now syncs with {server} (was {old}); its session and unsent work are kept");
    Ok(())
}
