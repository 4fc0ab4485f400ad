//! `pilar status`: who this device is, which server and villages, and what is unsent.

use super::open_store;
use crate::render::table;
use anyhow::Result;
use std::path::Path;
use sync_core::store::ListFilter;

/// Arguments of `pilar status`.
#[derive(clap::Args)]
pub struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Show the status.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let store = open_store(home)?;
    let session = store.session()?;
    let cursors = store.cursors()?;
    let outbox = store.outbox()?;
    let unsent = outbox.iter().filter(|e| e.rejected_reason.is_none()).count();
    let rejected = outbox.len() - unsent;
    let repairs = store.repairs()?;
    let (unsent_photos, unsent_photo_bytes) = store.unsent_photos()?;
    let mut villages = Vec::new();
    for v in store.villages()? {
        let households = store.list(&ListFilter { village: Some(v.clone()), ..ListFilter::default() })?.len();
        villages.push((v.clone(), households, cursors.get(&v).copied()));
    }
    if args.json {
        let out = serde_json::json!({
            "device": store.identity().device.to_string(),
            "user": store.identity().user,
            "server": session.as_ref().map(|s| s.server.clone()),
            "role": session.as_ref().map(|s| s.role.as_str()),
            "villages": villages.iter().map(|(v, n, c)| serde_json::json!({"village": v, "households": n, "cursor": c})).collect::<Vec<_>>(),
            "unsent_changes": unsent,
            "rejected_changes": rejected,
            "awaiting_repair": repairs,
            "unsent_photos": unsent_photos,
            "unsent_photo_bytes": unsent_photo_bytes,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("device  {}", store.identity().device);
    println!("user    {}", store.identity().user);
    match &session {
        Some(s) => println!("server  {} ({})", s.server, s.role),
        None => println!("server  none (offline store; `pilar login` connects it)"),
    }
    let rows: Vec<Vec<String>> = villages
        .iter()
        .map(|(v, n, c)| {
            let name = sync_core::ids::VillageCode::parse_format_only(v).ok().and_then(|c| c.name()).unwrap_or("?");
            vec![
                v.clone(),
                name.to_string(),
                n.to_string(),
                c.map(|c| c.to_string()).unwrap_or_else(|| "not synced".into()),
            ]
        })
        .collect();
    table(&["VILLAGE", "NAME", "HOUSEHOLDS", "CURSOR"], &rows);
    if unsent == 0 && rejected == 0 && unsent_photos == 0 {
        println!("nothing unsent");
    }
    if unsent > 0 {
        println!("{unsent} change(s) unsent: the next `pilar sync` sends them");
    }
    if unsent_photos > 0 {
        println!(
            "{unsent_photos} photo(s) not yet uploaded ({unsent_photo_bytes} bytes): the next `pilar sync` uploads them \
             after the household data, resuming where an earlier upload stopped"
        );
    }
    if rejected > 0 {
        println!(
            "{rejected} change(s) refused by the server: kept on this device but never sent again; `pilar pending`              shows why (fix the answer with a new save, or ask your supervisor)"
        );
    }
    if !repairs.is_empty() {
        println!(
            "{} household(s) wait to be restored from the server (their copy here could not take what the server              sent); the next `pilar sync` restores them and keeps this device's own work",
            repairs.len()
        );
    }
    Ok(())
}
