//! The `portleak` command line.
use anyhow::Result;
use clap::{Parser, Subcommand};

mod commands;
mod info;

#[derive(Parser)]
#[command(
    name = "portleak",
    version,
    about = "Who holds the TCP/UDP ports: port-exhaustion analysis of Windows kernel dumps"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show what a dump is: type, build, bugcheck, clock, pages (headers only; no symbols needed).
    Info(info::InfoArgs),
    /// The full report: capacity, owners, states, TIME_WAIT aging, verdict and next steps.
    Report(commands::ReportArgs),
    /// Every endpoint, netstat-like, with filters.
    Endpoints(commands::EndpointsArgs),
    /// Build the demo dump (Server 2008 R2 hit by the 497-day bug) and report on it.
    Demo(commands::DemoArgs),
    /// Triage many dumps in parallel: one line per dump.
    Triage(commands::TriageArgs),
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Info(args) => info::run(&args),
        Command::Report(args) => commands::report(&args),
        Command::Endpoints(args) => commands::endpoints(&args),
        Command::Demo(args) => commands::demo(&args),
        Command::Triage(args) => commands::triage(&args),
    }
}

/// Errors end as one line of prose with its causes (`error: cannot open X: the file is ...`),
/// not as a debug dump with a backtrace.
fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
