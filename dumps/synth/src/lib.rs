//! Synthetic Windows: scenario-driven kernel dumps that look real to a walker.
//!
//! A [`Scenario`] (TOML; see docs/SCENARIOS.md) names an OS build, a clock, processes and TCP/UDP
//! endpoints (single ones and seeded generators of thousands). [`build`] lays them out the way
//! Windows does as far as public sources tell (MEMORY-MODEL.md): fake ntoskrnl/tcpip/afd images
//! on PsLoadedModuleList, EPROCESSes on PsActiveProcessHead, tcpip partitions with RTL dynamic hash
//! tables, TIME_WAIT entries, listeners, UDP endpoints, port pools and AFD endpoints, every pool
//! object behind a tagged POOL_HEADER, all mapped through 4-level page tables; it writes the dump,
//! a symbol store with the modules' PDBs and the ground truth.
//!
//! ```no_run
//! let s = synth::Scenario::from_toml(synth::scenarios::get("a-2008r2-497-day").unwrap()).unwrap();
//! let built = synth::build(&s, std::path::Path::new("/tmp/out")).unwrap();
//! println!("{} {}", built.dump.display(), built.truth_data.derived.range);
//! ```

use std::path::PathBuf;

mod afd;
mod builder;
mod dump;
pub mod gen;
pub mod hash;
pub mod kernel;
pub mod layout;
pub mod modules;
mod scenario;
pub mod space;
mod tcpip;
pub mod truth;

pub mod demo;
pub mod scenarios;

pub use builder::layout_for;
pub use scenario::{
    Expect, HashSizes, Listener, Process, Scenario, State, System, Tcp, TcpBulk, TcpEndpoint, Udp,
    UdpBulk, UdpEndpoint,
};
pub use truth::{Truth, TruthEndpoint, TruthProcess, Verdicts};

/// Why a scenario could not be parsed or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The scenario text is malformed or inconsistent.
    #[error("scenario: {0}")]
    Scenario(String),
    /// The embedded modules or their manifest lack something the builder needs.
    #[error("fake modules: {0}")]
    Module(String),
    /// The builder's own layout went wrong (a bug: please report the scenario).
    #[error("layout: {0}")]
    Layout(String),
    /// Writing the output failed.
    #[error("output: {0}")]
    Io(String),
}

/// What [`build`] produced.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Built {
    /// The crash dump (`<out>/<name>.dmp`).
    pub dump: PathBuf,
    /// A two-tier symbol store (`<pdb>/<GUID><AGE>/<pdb>`) with ntkrnlmp.pdb, tcpip.pdb, afd.pdb.
    pub symbols_dir: PathBuf,
    /// The ground truth as JSON (`<out>/<name>.truth.json`).
    pub truth: PathBuf,
    /// The same truth, parsed.
    pub truth_data: Truth,
    /// Logical size of the dump file in bytes (filler pages are holes on disk).
    pub dump_size: u64,
    /// Physical frames holding data (not counting filler).
    pub frames: u64,
}

/// Builds `scenario` into `out_dir`: the dump, the symbol store and the truth.
pub fn build(scenario: &Scenario, out_dir: &std::path::Path) -> Result<Built, Error> {
    builder::build(scenario, out_dir)
}

/// FILETIME (100 ns since 1601-01-01 UTC) of a Unix time in seconds.
pub fn unix_to_filetime(secs: u64) -> u64 {
    (secs + 11_644_473_600) * 10_000_000
}
