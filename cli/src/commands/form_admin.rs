//! `pilar form publish|versions|use`: an admin publishes questionnaire versions on the server and
//! chooses which one new visits use (issue 17; the rules are the server's, docs/forms.md).

use crate::client::Client;
use crate::render::table;
use anyhow::Result;
use std::path::Path;
use sync_core::form::FormDefinition;
use sync_core::protocol::{FormDefaultRequest, FormDefaultView, FormsView, PublishedForm};

/// Publish `form` (already read and checked on this machine). The server checks it against every
/// earlier version of the form and refuses, with each problem, what would make stored answers
/// unreadable. Publishing the same definition again is harmless (a retry after a lost answer).
pub fn publish(home: &Path, form: &FormDefinition) -> Result<()> {
    let mut client = Client::from_session(home)?;
    let published: PublishedForm = client.post("/v1/admin/forms", form)?;
    if published.created {
        println!("published {}", published.key);
    } else {
        println!("{} was already published with this very definition; nothing changed", published.key);
    }
    println!("new visits use it once it is a default: pilar form use {} [--kabupaten CODE]", published.key);
    Ok(())
}

/// List the published versions and the defaults.
pub fn versions(home: &Path, json: bool) -> Result<()> {
    let mut client = Client::from_session(home)?;
    let view: FormsView = client.get("/v1/forms")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = view
        .versions
        .iter()
        .map(|v| vec![v.key.clone(), v.title.clone(), v.published_by.clone(), v.published_at.clone()])
        .collect();
    table(&["FORM", "TITLE", "PUBLISHED BY", "AT"], &rows);
    println!();
    println!("new visits use:");
    let rows: Vec<Vec<String>> = view.defaults.iter().map(default_row).collect();
    table(&["KABUPATEN", "NAME", "FORM", "SET BY", "AT"], &rows);
    Ok(())
}

fn default_row(d: &FormDefaultView) -> Vec<String> {
    let area = if d.kabupaten.is_empty() { "(every other)".to_string() } else { d.kabupaten.clone() };
    vec![area, d.name.clone(), d.form.clone(), d.set_by.clone(), d.set_at.clone()]
}

/// Make `form` the version new visits use in `kabupaten`, or everywhere without one of its own.
pub fn use_version(home: &Path, form: &str, kabupaten: Option<String>) -> Result<()> {
    let mut client = Client::from_session(home)?;
    let request = FormDefaultRequest { kabupaten, form: form.to_string() };
    let set: FormDefaultView = client.put("/v1/admin/forms/default", &request)?;
    match set.kabupaten.as_str() {
        "" => println!("new visits use {} in every kabupaten without a default of its own", set.form),
        code => println!("new visits in kabupaten {code} ({}) use {}", set.name, set.form),
    }
    println!("devices receive it on their next sync");
    Ok(())
}
