//! `pilar init`: create the device store for a user and their villages.

use anyhow::{Context, Result, bail};
use std::path::Path;
use sync_core::form::FormDefinition;
use sync_core::ids::VillageCode;
use sync_core::model::DeviceId;
use sync_core::store::{DeviceIdentity, DeviceStore};

/// Arguments of `pilar init`.
#[derive(clap::Args)]
pub struct Args {
    /// The user name of the person working on this device.
    #[arg(long)]
    user: String,
    /// A village (desa/kelurahan) code to work in, e.g. 73.14.01.1001; repeat for several.
    #[arg(long = "village", required = true)]
    villages: Vec<String>,
}

/// Create the store.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let user = args.user.trim();
    if user.is_empty() || user.chars().any(char::is_whitespace) {
        bail!("--user must be a user name without spaces, e.g. --user pkh.bilokka01");
    }
    let mut villages = Vec::new();
    for v in &args.villages {
        villages.push(VillageCode::parse(v).with_context(|| format!("--village {v}"))?);
    }
    let identity = DeviceIdentity {
        device: DeviceId::random(),
        user: user.to_string(),
        form: FormDefinition::default_dtsen().key(),
    };
    let store = DeviceStore::create(home, &identity, &villages, super::now()?)?;
    println!("device store created in {}", home.display());
    println!("  device  {}", identity.device);
    println!("  user    {}", identity.user);
    println!("  form    {}", identity.form);
    for v in &villages {
        println!("  village {} {}", v, v.name().unwrap_or("?"));
    }
    drop(store);
    Ok(())
}
