//! `pilar photo`: attach a photo to a household (checked by content, kept byte for byte, queued
//! for upload), list a household's photos, and export them to a folder with an index.

use super::open_store;
use crate::render::{line, table};
use anyhow::{Context, Result, bail};
use pilar_export::photo_file_name;
use std::path::{Path, PathBuf};
use sync_core::entry;
use sync_core::model::HouseholdId;
use sync_core::photo::{Mime, PhotoId, PhotoKind};

/// `pilar photo …`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Attach a photo (JPEG or PNG) to a household; it is uploaded by the next `pilar sync`.
    Add(AddArgs),
    /// List the photos attached to a household (or all on this device).
    List(ListArgs),
    /// Copy a household's photos into a folder, with an index (photos.csv).
    Export(ExportArgs),
}

/// What a photo shows, as typed on the command line.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum KindArg {
    /// The front of the house.
    #[value(name = "house_front")]
    HouseFront,
    /// Inside the house.
    #[value(name = "house_inside")]
    HouseInside,
    /// The family card (Kartu Keluarga).
    #[value(name = "kk_card")]
    KkCard,
    /// Anything else.
    Other,
}

impl From<KindArg> for PhotoKind {
    fn from(k: KindArg) -> PhotoKind {
        match k {
            KindArg::HouseFront => PhotoKind::HouseFront,
            KindArg::HouseInside => PhotoKind::HouseInside,
            KindArg::KkCard => PhotoKind::KkCard,
            KindArg::Other => PhotoKind::Other,
        }
    }
}

/// Arguments of `pilar photo add`.
#[derive(clap::Args)]
pub struct AddArgs {
    /// Household id (or its first characters).
    household: String,
    /// The photo file (JPEG or PNG, at most 10 MiB).
    file: PathBuf,
    /// What the photo shows.
    #[arg(long, value_enum)]
    kind: KindArg,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `pilar photo list`.
#[derive(clap::Args)]
pub struct ListArgs {
    /// Household id (or its first characters); every photo on this device when left out.
    household: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Arguments of `pilar photo export`.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// Household id (or its first characters).
    household: String,
    /// The folder to write the photos and photos.csv into (created if missing).
    dir: PathBuf,
}

/// Run a `pilar photo` subcommand.
pub fn run(home: &Path, command: Command) -> Result<()> {
    match command {
        Command::Add(args) => add(home, args),
        Command::List(args) => list(home, args),
        Command::Export(args) => export(home, args),
    }
}

fn add(home: &Path, args: AddArgs) -> Result<()> {
    let mut store = open_store(home)?;
    let id = store.resolve_id(&args.household)?;
    let size =
        std::fs::metadata(&args.file).with_context(|| format!("cannot read photo file {}", args.file.display()))?.len();
    if size > sync_core::photo::MAX_PHOTO_BYTES {
        // Refused before reading 100 MB into memory.
        return Err(sync_core::photo::PhotoError::TooLarge { bytes: size, limit: sync_core::photo::MAX_PHOTO_BYTES })
            .context("nothing was attached");
    }
    let bytes = std::fs::read(&args.file).with_context(|| format!("cannot read photo file {}", args.file.display()))?;
    let added = entry::add_photo(&mut store, id, args.kind.into(), &bytes, super::now()?)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&added)?);
        return Ok(());
    }
    match &added.change {
        Some(_) => println!(
            "attached {} photo {} ({} bytes, {} {}x{}) to household {}",
            added.kind,
            &added.photo.as_str()[..12],
            added.bytes,
            added.mime.as_str(),
            added.size_px.0,
            added.size_px.1,
            id
        ),
        None => println!("household {id} already has photo {}; nothing changed", &added.photo.as_str()[..12]),
    }
    if added.bytes_already_kept {
        println!("the same photo is already kept on this device: it is stored and uploaded once");
    }
    if let Some((lat, lon)) = added.exif_gps {
        println!(
            "note: the photo's EXIF says it was taken at {lat:.5}, {lon:.5}; this is reported only and not stored \
             (record the house's position with `pilar visit --gps LAT,LON,ACCURACY`)"
        );
    }
    println!("it is uploaded by the next `pilar sync`");
    Ok(())
}

/// One photo as `pilar photo list` shows it: what the device keeps of it, or for a household's
/// photos taken on another device (a colleague's, or a merged household's) only its reference.
#[derive(Debug, serde::Serialize)]
struct ListedPhoto {
    /// Its content address.
    id: PhotoId,
    /// The household it is attached to.
    household: HouseholdId,
    /// What it shows.
    kind: String,
    /// Its type.
    mime: String,
    /// Its size in bytes.
    size: u64,
    /// When the server confirmed it holds the whole photo (RFC 3339), if this device sent it.
    uploaded_at: Option<String>,
    /// Whether this device keeps the bytes (devices keep only the photos they took).
    on_this_device: bool,
}

fn list(home: &Path, args: ListArgs) -> Result<()> {
    let store = open_store(home)?;
    let household = args.household.as_deref().map(|h| store.resolve_id(h)).transpose()?;
    let kept = store.photos(None)?;
    let listed: Vec<ListedPhoto> = match household {
        // Every photo this device keeps.
        None => kept
            .into_iter()
            .map(|p| ListedPhoto {
                id: p.id,
                household: p.household,
                kind: p.kind.as_str().to_string(),
                mime: p.mime.as_str().to_string(),
                size: p.size,
                uploaded_at: p.uploaded_at,
                on_this_device: true,
            })
            .collect(),
        // Every photo the household's document references, kept here or not.
        Some(id) => {
            let state = store.load(id)?.household.state();
            let mut listed = Vec::new();
            for (key, reference) in state.photos {
                let Ok(photo) = key.parse::<PhotoId>() else { continue };
                let here = kept.iter().find(|p| p.id == photo);
                listed.push(ListedPhoto {
                    id: photo,
                    household: id,
                    kind: reference.kind,
                    mime: reference.mime,
                    size: reference.bytes.max(0) as u64,
                    uploaded_at: here.and_then(|p| p.uploaded_at.clone()),
                    on_this_device: here.is_some(),
                });
            }
            listed
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&listed)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = listed
        .iter()
        .map(|p| {
            vec![
                p.household.to_string()[..8].to_string(),
                line(&p.kind),
                p.id.as_str()[..12].to_string(),
                line(&p.mime),
                p.size.to_string(),
                match (&p.uploaded_at, p.on_this_device) {
                    (Some(at), _) => format!("uploaded {}", line(at)),
                    (None, true) => "not uploaded".into(),
                    (None, false) => "taken on another device".into(),
                },
            ]
        })
        .collect();
    table(&["HOUSEHOLD", "KIND", "PHOTO", "TYPE", "BYTES", "STATE"], &rows);
    if rows.is_empty() {
        println!("no photos");
    }
    Ok(())
}

/// One row of an export's photo index.
pub struct IndexRow {
    /// The household.
    pub household: HouseholdId,
    /// What it shows.
    pub kind: String,
    /// The photo's address.
    pub photo: PhotoId,
    /// The type.
    pub mime: Mime,
}

/// The file name a photo is exported under: household, kind and address, never a person's name.
pub fn export_file_name(row: &IndexRow) -> String {
    photo_file_name(row.household, &row.kind, &row.photo, row.mime)
}

/// Write `photos.csv` (household, kind, file name, sha256, bytes) into `dir`, appending to an
/// index already there so several households can be exported into one folder.
pub fn write_index(dir: &Path, rows: &[(IndexRow, u64)]) -> Result<PathBuf> {
    let path = dir.join("photos.csv");
    let exists = path.exists();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let mut writer = csv::Writer::from_writer(file);
    if !exists {
        writer.write_record(["household", "kind", "file", "sha256", "bytes"])?;
    }
    for (row, size) in rows {
        writer.write_record([
            row.household.to_string(),
            row.kind.clone(),
            export_file_name(row),
            row.photo.to_string(),
            size.to_string(),
        ])?;
    }
    writer.flush()?;
    Ok(path)
}

fn export(home: &Path, args: ExportArgs) -> Result<()> {
    let store = open_store(home)?;
    let local = store.resolve_id(&args.household).ok().filter(|id| store.contains(*id).unwrap_or(false));
    let Some(id) = local else {
        // A supervisor's laptop keeps no households: the photos come from the server, for the
        // households of the caller's kecamatan only.
        drop(store);
        return export_from_server(home, &args);
    };
    std::fs::create_dir_all(&args.dir).with_context(|| format!("cannot create folder {}", args.dir.display()))?;
    let state = store.load(id)?.household.state();
    let mut on_device = 0;
    for key in state.photos.keys() {
        if let Ok(photo) = key.parse::<PhotoId>() {
            on_device += usize::from(store.photo_bytes(&photo)?.is_some());
        }
    }
    if on_device < state.photos.len() && store.session()?.is_some() {
        // Photos attached on other devices are not kept here (least data): all come from the server.
        drop(store);
        return export_from_server(home, &args);
    }
    let mut rows = Vec::new();
    let mut missing = 0;
    for (key, photo) in &state.photos {
        let (Ok(photo_id), Some(mime)) = (key.parse::<PhotoId>(), Mime::parse(&photo.mime)) else { continue };
        let Some(bytes) = store.photo_bytes(&photo_id)? else {
            missing += 1;
            continue;
        };
        let row = IndexRow { household: id, kind: photo.kind.clone(), photo: photo_id, mime };
        let path = args.dir.join(export_file_name(&row));
        std::fs::write(&path, &bytes).with_context(|| format!("cannot write {}", path.display()))?;
        rows.push((row, bytes.len() as u64));
    }
    if state.photos.is_empty() {
        bail!("household {id} has no photos");
    }
    let index = write_index(&args.dir, &rows)?;
    println!("wrote {} photo(s) of household {id} to {} (index {})", rows.len(), args.dir.display(), index.display());
    if missing > 0 {
        println!(
            "{missing} photo(s) attached on other devices are not on this device (devices keep only their own); \
             a supervisor exports them from the server"
        );
    }
    Ok(())
}

/// Export a household's photos from the server (supervisors; or photos taken on other devices).
fn export_from_server(home: &Path, args: &ExportArgs) -> Result<()> {
    let mut client = crate::client::Client::from_session(home)?;
    let id = super::supervise::household(&mut client, &args.household)?;
    let listed: Vec<sync_core::photo::ListedPhoto> = client.get(&format!("/v1/households/{id}/photos"))?;
    std::fs::create_dir_all(&args.dir).with_context(|| format!("cannot create folder {}", args.dir.display()))?;
    let mut rows = Vec::new();
    let mut waiting = 0;
    for photo in listed {
        let Some(mime) = Mime::parse(&photo.reference.mime) else { continue };
        if !photo.uploaded {
            waiting += 1;
            continue;
        }
        let url = client.url(&format!("/v1/households/{id}/photos/{}", photo.photo));
        let response = client.send(|http| http.get(&url))?;
        let bytes = client.body(response)?;
        if PhotoId::of_bytes(&bytes) != photo.photo {
            bail!("photo {} arrived damaged (its SHA-256 differs); run the export again", photo.photo);
        }
        let row = IndexRow { household: id, kind: photo.reference.kind.clone(), photo: photo.photo, mime };
        let path = args.dir.join(export_file_name(&row));
        std::fs::write(&path, &bytes).with_context(|| format!("cannot write {}", path.display()))?;
        rows.push((row, bytes.len() as u64));
    }
    let index = write_index(&args.dir, &rows)?;
    println!(
        "wrote {} photo(s) of household {id} from the server to {} (index {})",
        rows.len(),
        args.dir.display(),
        index.display()
    );
    if waiting > 0 {
        println!(
            "{waiting} photo(s) have not reached the server yet; the device that took them uploads them on its next sync"
        );
    }
    Ok(())
}
