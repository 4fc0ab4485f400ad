//! `pilar`: the field worker's and supervisor's command-line client, and the reference client a
//! tablet app copies. Every command works on the device store in `--home`.

mod client;
mod commands;
mod render;
use pilar_roster as roster;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Pilar: offline-first household visits for DTSEN ground checks.
#[derive(Parser)]
#[command(name = "pilar", version, about, max_term_width = 100)]
struct Cli {
    /// The device's data directory (its store lives here).
    #[arg(long, global = true, env = "PILAR_HOME")]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the device store: who works on this device and in which villages.
    Init(commands::init::Args),
    /// Add a household found in the field (or not yet on the list).
    Add(commands::add::Args),
    /// List households, with filters.
    List(commands::list::Args),
    /// Search households by name, NIK or KK number.
    Search(commands::search::Args),
    /// Show one household: answers, members, visits and conflicting values.
    Show(commands::show::Args),
    /// Change household answers outside a visit (corrections).
    Edit(commands::edit::Args),
    /// Record a visit: its outcome, answers and GPS.
    Visit(commands::visit::Args),
    /// Add, edit or remove household members.
    #[command(subcommand)]
    Member(commands::member::Command),
    /// Attach photos to a household, list them, export them with an index.
    #[command(subcommand)]
    Photo(commands::photo::Command),
    /// Show every value a field has had: who wrote it, when, from which device.
    History(commands::history::Args),
    /// Show what is waiting to be sent to the server.
    Pending(commands::pending::Args),
    /// Show the questionnaire: fields, codes and outcomes.
    Form(commands::form::Args),
    /// Log in to a server (once, online): registers this device and keeps the session.
    Login(commands::login::Args),
    /// Show the server address this device syncs with, or change it after the server moved.
    Server(commands::server::Args),
    /// Admin tasks on the server: users, assignments, devices.
    #[command(subcommand)]
    Admin(commands::admin::Command),
    /// Supervisor or admin: export households (XLSX or CSV) of a kecamatan or kabupaten.
    Export(commands::export::Args),
    /// Admin: import the household roster (CSV or XLSX) onto the server.
    #[command(subcommand)]
    Roster(commands::roster::Command),
    /// Supervisor: the review queue; approve or return households.
    #[command(subcommand)]
    Review(commands::supervise::ReviewCommand),
    /// Supervisor: the conflict inbox; settle fields with several values.
    #[command(subcommand)]
    Conflicts(commands::supervise::ConflictCommand),
    /// Supervisor: households suspected to be one family; merge or dismiss.
    #[command(subcommand)]
    Duplicates(commands::supervise::DuplicateCommand),
    /// Supervisor or admin: households, visits, outcomes, reviews per village and enumerator.
    Progress(commands::supervise::ProgressArgs),
    /// Households a supervisor returned to you, with their comments (works offline).
    Returned(commands::supervise::ReturnedArgs),
    /// Send this device's work to the server and receive colleagues' changes in its villages.
    Sync(commands::sync::Args),
    /// Show this device: user, server, villages, what is unsent.
    Status(commands::status::Args),
    /// Check this device's store and restore anything damaged from the server, keeping own work.
    Repair(commands::repair::Args),
    /// Developer tools.
    #[command(subcommand, hide = true)]
    Debug(commands::debug::Command),
}

fn default_home() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".pilar")
}

fn main() -> ExitCode {
    // A reader that went away (`pilar list | head`) is not an error: the command stops quietly
    // with success; whatever it stored was committed before it printed.
    let report_panic = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !render::is_broken_pipe(&panic_message(info.payload())) {
            report_panic(info);
        }
    }));
    match std::panic::catch_unwind(run) {
        Ok(code) => code,
        Err(payload) if render::is_broken_pipe(&panic_message(payload.as_ref())) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(101),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

fn run() -> ExitCode {
    let cli = Cli::parse();
    let home = cli.home.unwrap_or_else(default_home);
    let result = match cli.command {
        Command::Init(args) => commands::init::run(&home, args),
        Command::Add(args) => commands::add::run(&home, args),
        Command::List(args) => commands::list::run(&home, args),
        Command::Search(args) => commands::search::run(&home, args),
        Command::Show(args) => commands::show::run(&home, args),
        Command::Edit(args) => commands::edit::run(&home, args),
        Command::Visit(args) => commands::visit::run(&home, args),
        Command::Member(cmd) => commands::member::run(&home, cmd),
        Command::Photo(cmd) => commands::photo::run(&home, cmd),
        Command::History(args) => commands::history::run(&home, args),
        Command::Pending(args) => commands::pending::run(&home, args),
        Command::Form(args) => commands::form::run(&home, args),
        Command::Login(args) => commands::login::run(&home, args),
        Command::Server(args) => commands::server::run(&home, args),
        Command::Admin(cmd) => commands::admin::run(&home, cmd),
        Command::Export(args) => commands::export::run(&home, args),
        Command::Roster(cmd) => commands::roster::run(&home, cmd),
        Command::Review(cmd) => commands::supervise::review(&home, cmd),
        Command::Conflicts(cmd) => commands::supervise::conflicts(&home, cmd),
        Command::Duplicates(cmd) => commands::supervise::duplicates(&home, cmd),
        Command::Progress(args) => commands::supervise::progress(&home, args),
        Command::Returned(args) => commands::supervise::returned(&home, args),
        Command::Sync(args) => commands::sync::run(&home, args),
        Command::Status(args) => commands::status::run(&home, args),
        Command::Repair(args) => commands::repair::run(&home, args),
        Command::Debug(cmd) => commands::debug::run(&home, cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = exit_code(&e);
            if e.downcast_ref::<commands::Reported>().is_none() {
                eprintln!("error: {}", render::block(&format!("{e:#}")));
            }
            ExitCode::from(code)
        }
    }
}

/// The exit code for a failed command, so a tablet app can act without parsing text: 3 = network
/// trouble (try again; the work is kept), 4 = the server refused (see the message), 1 = anything
/// else. (2 is clap's usage error.)
fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(reported) = cause.downcast_ref::<commands::Reported>() {
            return reported.code;
        }
        if cause.downcast_ref::<client::NetworkFailure>().is_some() {
            return commands::EXIT_NETWORK;
        }
        if cause.downcast_ref::<client::ServerRefused>().is_some()
            || cause.downcast_ref::<client::DeviceWiped>().is_some()
        {
            return commands::EXIT_REFUSED;
        }
    }
    1
}
