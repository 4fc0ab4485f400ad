//! `pilar login`: sign in to a server once while online. Registers this device to the user,
//! creates the device store on first login, and keeps the session and the assigned villages.

use crate::client::{self, Client};
use anyhow::{Context, Result, bail};
use std::io::{BufRead, IsTerminal};
use std::path::Path;
use sync_core::form::FormDefinition;
use sync_core::ids::VillageCode;
use sync_core::model::DeviceId;
use sync_core::protocol::LoginRequest;
use sync_core::store::{DeviceIdentity, DeviceStore, Session, StoreError};

/// Arguments of `pilar login`. The password is read from a prompt, or from the first line of
/// standard input when it is not a terminal; never from a flag (flags land in shell history).
#[derive(clap::Args)]
pub struct Args {
    /// The server's address, e.g. https://pilar.dinsos.example.go.id.
    #[arg(long)]
    server: String,
    /// Your user name, as the admin created it.
    #[arg(long)]
    user: String,
    /// A label for this device that admins see, e.g. the tablet's sticker (default: the host name).
    #[arg(long)]
    device_name: Option<String>,
}

/// Log in and keep the session.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let server = client::server_url(&args.server)?;
    let user = args.user.trim().to_string();
    if user.is_empty() || user.chars().any(char::is_whitespace) {
        bail!("--user must be a user name without spaces, e.g. --user pkh.bilokka01");
    }
    let existing = match DeviceStore::open(home) {
        Ok(store) => Some(store),
        Err(StoreError::NotInitialised(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let owner = existing.as_ref().map(|store| store.identity().user.clone());
    if let Some(owner) = owner.filter(|owner| *owner != user) {
        bail!(
            "the device store in {} belongs to {owner}; one device store serves one user, so log in as {user} with \
             another --home",
            home.display()
        );
    }
    if server.starts_with("http://") && !is_loopback(&server) {
        eprintln!(
            "warning: {server} is not encrypted (http://); your password crosses the network readable. Use https://."
        );
    }
    let device = existing.as_ref().map(|s| s.identity().device).unwrap_or_else(DeviceId::random);
    let password = read_password(&user)?;
    let device_name = args.device_name.unwrap_or_else(default_device_name);
    let mut client = Client::new(&server, home, device)?;
    // A store made with `pilar init` that logs in for the first time: its device registers now.
    let never_logged_in = existing.as_ref().is_some_and(|s| matches!(s.session(), Ok(None)));
    // Close our store while the client may wipe it (a revoked device is told to).
    drop(existing);
    let login = client.login(&LoginRequest { user: user.clone(), password, device, device_name })?;

    let mut store = match DeviceStore::open(home) {
        Ok(store) => store,
        Err(StoreError::NotInitialised(_)) => {
            let mut villages = Vec::new();
            for v in &login.villages {
                villages
                    .push(VillageCode::parse_format_only(v).with_context(|| format!("village {v} from the server"))?);
            }
            let identity = DeviceIdentity { device, user: user.clone(), form: FormDefinition::default_dtsen().key() };
            let store = DeviceStore::create(home, &identity, &villages, super::now()?)?;
            println!("device store created in {}", home.display());
            store
        }
        Err(e) => return Err(e.into()),
    };
    store.set_session(&Session {
        server: server.clone(),
        refresh_token: login.refresh_token.clone(),
        role: login.role,
    })?;
    store.set_villages(&login.villages)?;
    let expires_at =
        crate::client::unix_now().saturating_add(i64::try_from(login.access_expires_in).unwrap_or(i64::MAX));
    store.set_access_token(&login.access_token, expires_at)?;

    println!("logged in to {} as {} ({})", client.server(), login.user, login.role);
    println!("  device    {device}");
    for v in &login.villages {
        let name = VillageCode::parse_format_only(v).ok().and_then(|c| c.name());
        println!("  village   {v} {}", name.unwrap_or("?"));
    }
    for k in &login.kecamatan {
        let name = sync_core::ids::DistrictCode::parse_format_only(k).ok().and_then(|c| c.name());
        println!("  kecamatan {k} {}", name.unwrap_or("?"));
    }
    if never_logged_in {
        warn_about_old_work(&store)?;
    }
    if login.villages.is_empty() && login.kecamatan.is_empty() && login.role != sync_core::protocol::Role::Admin {
        println!("no villages or kecamatan are assigned to {} yet; ask the admin to assign them", login.user);
    }
    Ok(())
}

/// Work saved in a store before its device first logged in is dated before the device's
/// registration; the server accepts it only within 24 hours of that (a change dated earlier could
/// be a forgery). Say so at once rather than at the next sync.
fn warn_about_old_work(store: &DeviceStore) -> Result<()> {
    use time::format_description::well_known::Rfc3339;
    let limit = super::now()? - time::Duration::hours(24);
    let old = store
        .outbox()?
        .iter()
        .filter(|e| time::OffsetDateTime::parse(&e.created_at, &Rfc3339).is_ok_and(|at| at < limit))
        .count();
    if old > 0 {
        eprintln!(
            "warning: {old} change(s) on this device were saved more than 24 hours before its first login; the \
             server refuses work dated that long before a device registered, so they will be listed as refused \
             (`pilar pending`). Log a device in before working in the field."
        );
    }
    Ok(())
}

/// The password: from a hidden prompt on a terminal, else the first line of standard input.
fn read_password(user: &str) -> Result<String> {
    let password = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("password for {user}: ")).context("cannot read the password")?
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    if password.is_empty() {
        bail!("no password given; type it at the prompt, or pipe it on the first line of standard input");
    }
    Ok(password)
}

fn default_device_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .map(|h| format!("pilar on {h}"))
        .unwrap_or_else(|| "pilar".to_string())
}

/// Whether `server` is on this machine (plain http:// is then no risk).
pub(crate) fn is_loopback(server: &str) -> bool {
    reqwest::Url::parse(server).ok().and_then(|u| u.host_str().map(str::to_string)).is_some_and(|host| {
        host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()) || host == "[::1]"
    })
}
