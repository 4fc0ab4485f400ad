//! `pilar admin …`: accounts, assignments and devices on the server, over HTTP with the session of
//! `--home` (an admin logs in with `pilar login` like anyone, so a remote admin can work).

use crate::client::{Client, ServerRefused};
use crate::render::{cell, table};
use anyhow::{Context, Result, bail};
use std::io::BufRead;
use std::path::Path;
use sync_core::protocol::{
    CreateUserRequest, CreatedUser, DeviceView, KecamatanRequest, PasswordRequest, Role, RoleRequest, UserView,
    VillagesRequest,
};

/// `pilar admin` subcommands.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Create, list and change user accounts (password, role).
    #[command(subcommand)]
    User(UserCommand),
    /// Replace a user's villages (enumerators) or kecamatan (supervisors) with the given set.
    Assign(AssignArgs),
    /// List registered devices: who, when registered, last seen, revoked.
    Devices(ListArgs),
    /// Revoke a device: it can no longer sync, and deletes its data when it next reaches the server.
    Revoke(RevokeArgs),
}

/// `pilar admin user` subcommands.
#[derive(clap::Subcommand)]
pub enum UserCommand {
    /// Create a user. Without --password-stdin the server generates a password, shown once.
    Add(AddArgs),
    /// List users with their active assignments.
    List(ListArgs),
    /// Give a user a new password: generated and shown once, unless --password-stdin. Their
    /// office web page sessions end; devices they are signed in on keep working.
    Password(PasswordArgs),
    /// Change a user's role. Refused while they hold villages or kecamatan of their present role:
    /// take those away first (`pilar admin assign NAME --none`).
    Role(RoleArgs),
}

/// Arguments of `pilar admin user add`.
#[derive(clap::Args)]
pub struct AddArgs {
    /// The new user name: lowercase letters, digits, '.', '-', '_' (e.g. pkh.bilokka01).
    name: String,
    /// What the user does: admin, supervisor or enumerator.
    #[arg(long, value_parser = parse_role)]
    role: Role,
    /// Read the password from the first line of standard input instead of generating one.
    #[arg(long)]
    password_stdin: bool,
}

/// Arguments of `pilar admin user password`.
#[derive(clap::Args)]
pub struct PasswordArgs {
    /// The user whose password is replaced.
    name: String,
    /// Read the new password from the first line of standard input instead of generating one.
    #[arg(long)]
    password_stdin: bool,
}

/// Arguments of `pilar admin user role`.
#[derive(clap::Args)]
pub struct RoleArgs {
    /// The user whose role changes.
    name: String,
    /// The new role: admin, supervisor or enumerator.
    #[arg(long, value_parser = parse_role)]
    role: Role,
}

/// Arguments of the list commands.
#[derive(clap::Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Arguments of `pilar admin assign`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("codes").required(true).args(["villages", "kecamatan", "none"])))]
pub struct AssignArgs {
    /// The user to assign.
    name: String,
    /// Village codes for an enumerator, e.g. 73.14.01.1001 (replaces the current set).
    #[arg(long = "village", num_args = 1.., value_name = "CODE")]
    villages: Vec<String>,
    /// Kecamatan codes for a supervisor, e.g. 73.14.01 (replaces the current set).
    #[arg(long = "kecamatan", num_args = 1.., value_name = "CODE")]
    kecamatan: Vec<String>,
    /// Take away every village or kecamatan of the user (an enumerator's devices upload what is
    /// pending, then purge those villages).
    #[arg(long)]
    none: bool,
}

/// Arguments of `pilar admin revoke`.
#[derive(clap::Args)]
pub struct RevokeArgs {
    /// The device id, as `pilar admin devices` lists it (or its first characters, at least 4).
    device: String,
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| format!("{text:?} is not a role; use admin, supervisor or enumerator"))
}

/// Run an admin subcommand against the server of `home`'s session.
pub fn run(home: &Path, command: Command) -> Result<()> {
    let mut client = Client::from_session(home)?;
    match command {
        Command::User(UserCommand::Add(args)) => add_user(&mut client, args),
        Command::User(UserCommand::List(args)) => list_users(&mut client, args),
        Command::User(UserCommand::Password(args)) => reset_password(&mut client, args),
        Command::User(UserCommand::Role(args)) => change_role(&mut client, args),
        Command::Assign(args) => assign(&mut client, args),
        Command::Devices(args) => list_devices(&mut client, args),
        Command::Revoke(args) => revoke(&mut client, args),
    }
}

/// The password on the first line of standard input (`--password-stdin`).
fn password_from_stdin() -> Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        bail!("--password-stdin: the first line of standard input is empty; pipe the password in");
    }
    Ok(password.to_string())
}

/// Refuse a name that cannot be a user's before it goes into a URL path.
fn check_user_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'));
    if !valid {
        bail!("{name:?} is not a user name; list users with `pilar admin user list`");
    }
    Ok(())
}

/// `what` (naming the user) failed: the server's refusal kept (exit code 4) under a message that
/// says what was refused and, for the refusals an admin meets, what to do: an unknown user, or
/// `on_invalid` for a request the server found invalid.
fn refused(e: anyhow::Error, what: &str, on_invalid: &str) -> anyhow::Error {
    let hint = match e.downcast_ref::<ServerRefused>().map(|refused| refused.body.error.as_str()) {
        Some("not_found") => " (there is no such user; `pilar admin user list` lists them)".to_string(),
        Some("invalid_input") if !on_invalid.is_empty() => format!(" ({on_invalid})"),
        _ => String::new(),
    };
    e.context(format!("cannot {what}{hint}"))
}

fn add_user(client: &mut Client, args: AddArgs) -> Result<()> {
    let mut request = CreateUserRequest { name: args.name, role: args.role, password: None };
    if args.password_stdin {
        request.password = Some(password_from_stdin()?);
    }
    let created: CreatedUser = client.post("/v1/admin/users", &request)?;
    println!("created user {} ({})", created.name, created.role);
    if let Some(password) = created.password {
        println!("password: {password}");
        println!("(shown only this once: give it to {} privately)", created.name);
    }
    Ok(())
}

fn reset_password(client: &mut Client, args: PasswordArgs) -> Result<()> {
    check_user_name(&args.name)?;
    let request = PasswordRequest { password: if args.password_stdin { Some(password_from_stdin()?) } else { None } };
    let changed: CreatedUser = client
        .post(&format!("/v1/admin/users/{}/password", args.name), &request)
        .map_err(|e| refused(e, &format!("set a new password for {}", args.name), ""))?;
    println!("new password set for {} ({}); their office web page sessions ended", changed.name, changed.role);
    if let Some(password) = changed.password {
        println!("password: {password}");
        println!("(shown only this once: give it to {} privately)", changed.name);
    }
    Ok(())
}

fn change_role(client: &mut Client, args: RoleArgs) -> Result<()> {
    check_user_name(&args.name)?;
    let request = RoleRequest { role: args.role };
    let user: UserView = client.put(&format!("/v1/admin/users/{}/role", args.name), &request).map_err(|e| {
        let what = format!("make {} {}", args.name, article_and(args.role));
        refused(e, &what, &format!("take their areas away first: `pilar admin assign {} --none`", args.name))
    })?;
    println!("{} is now {}", user.name, article_and(user.role));
    Ok(())
}

/// `a supervisor`, `an admin`, `an enumerator`.
fn article_and(role: Role) -> String {
    let article = if matches!(role, Role::Admin | Role::Enumerator) { "an" } else { "a" };
    format!("{article} {role}")
}

fn list_users(client: &mut Client, args: ListArgs) -> Result<()> {
    let users: Vec<UserView> = client.get("/v1/admin/users")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&users)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|u| {
            let scope = match u.role {
                Role::Supervisor => u.kecamatan.join(" "),
                _ => u.villages.join(" "),
            };
            vec![u.name.clone(), u.role.to_string(), u.created_at.clone(), cell(Some(scope).filter(|s| !s.is_empty()))]
        })
        .collect();
    table(&["USER", "ROLE", "CREATED", "ASSIGNED"], &rows);
    Ok(())
}

fn assign(client: &mut Client, args: AssignArgs) -> Result<()> {
    check_user_name(&args.name)?;
    let supervisor = if args.none {
        let users: Vec<UserView> = client.get("/v1/admin/users")?;
        let Some(found) = users.iter().find(|u| u.name == args.name) else {
            bail!("there is no user {:?}; list users with `pilar admin user list`", args.name);
        };
        found.role == Role::Supervisor
    } else {
        !args.kecamatan.is_empty()
    };
    let user: UserView = if supervisor {
        client
            .put(&format!("/v1/admin/users/{}/kecamatan", args.name), &KecamatanRequest { kecamatan: args.kecamatan })?
    } else {
        client.put(&format!("/v1/admin/users/{}/villages", args.name), &VillagesRequest { villages: args.villages })?
    };
    println!("{} ({}) is now assigned:", user.name, user.role);
    for v in &user.villages {
        let name = sync_core::ids::VillageCode::parse_format_only(v).ok().and_then(|c| c.name());
        println!("  village   {v} {}", name.unwrap_or("?"));
    }
    for k in &user.kecamatan {
        let name = sync_core::ids::DistrictCode::parse_format_only(k).ok().and_then(|c| c.name());
        println!("  kecamatan {k} {}", name.unwrap_or("?"));
    }
    if user.villages.is_empty() && user.kecamatan.is_empty() {
        println!("  (nothing)");
    }
    Ok(())
}

fn list_devices(client: &mut Client, args: ListArgs) -> Result<()> {
    let devices: Vec<DeviceView> = client.get("/v1/admin/devices")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&devices)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = devices
        .iter()
        .map(|d| {
            vec![
                d.id.clone(),
                d.user.clone(),
                d.name.clone(),
                d.registered_at.clone(),
                d.last_seen_at.clone(),
                cell(d.revoked_at.as_deref()),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("no devices have logged in yet");
        return Ok(());
    }
    table(&["DEVICE", "USER", "NAME", "REGISTERED", "LAST SEEN", "REVOKED"], &rows);
    Ok(())
}

/// The device a full id or a unique prefix (at least 4 characters, as `pilar admin devices`
/// shows ids) names.
fn device_id(client: &mut Client, text: &str) -> Result<uuid::Uuid> {
    let text = text.trim().to_ascii_lowercase();
    if let Ok(id) = uuid::Uuid::parse_str(&text) {
        return Ok(id);
    }
    if text.len() < 4 || !text.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        bail!(
            "{text:?} is not a device id: give the id `pilar admin devices` lists (its first 4 or more characters \
             are enough when no other device starts with them)"
        );
    }
    let devices: Vec<DeviceView> = client.get("/v1/admin/devices")?;
    let matches: Vec<&DeviceView> = devices.iter().filter(|d| d.id.starts_with(&text)).collect();
    match matches.as_slice() {
        [one] => Ok(uuid::Uuid::parse_str(&one.id)?),
        [] => bail!("no device id starts with {text:?}; `pilar admin devices` lists the devices"),
        many => bail!(
            "{} devices start with {text:?} ({}); give more characters of the id",
            many.len(),
            many.iter().map(|d| format!("{} of {}", d.id, d.user)).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn revoke(client: &mut Client, args: RevokeArgs) -> Result<()> {
    let id = device_id(client, &args.device)?;
    // The endpoint takes no body; an empty JSON object keeps the request a well-formed JSON POST.
    let device: DeviceView = client.post(&format!("/v1/admin/devices/{id}/revoke"), &serde_json::Map::new())?;
    println!(
        "device {} ({}, user {}) revoked at {}; it can no longer sync, and deletes its data when it next reaches \
         the server",
        device.id,
        device.name,
        device.user,
        device.revoked_at.as_deref().unwrap_or("?")
    );
    Ok(())
}
