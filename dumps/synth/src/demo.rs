//! `portleak demo`: builds scenario (a) — a Server 2008 R2 SP1 box 500 days up, whose java.exe
//! left ~15,000 TIME_WAIT entries that the 497-day bug never reaps — from the embedded scenario
//! and modules, so a user can try the tool without a dump of their own.

use std::path::Path;

use crate::{Built, Error, Scenario};

/// Name of the demo scenario among [`crate::scenarios::all`].
pub const SCENARIO: &str = "a-2008r2-497-day";

/// Builds the demo dump into `out_dir`.
pub fn build(out_dir: &Path) -> Result<Built, Error> {
    let text = crate::scenarios::get(SCENARIO)
        .ok_or_else(|| Error::Scenario(format!("embedded scenario {SCENARIO} is missing")))?;
    let s = Scenario::from_toml(text)?;
    crate::build(&s, out_dir)
}

/// Print-ready lines saying what was written: the dump, the symbol store (a local store to put
/// on the symbol path), the truth, and the scenario's headline numbers.
pub fn describe(b: &Built) -> Vec<String> {
    let t = &b.truth_data;
    vec![
        format!("dump:    {} ({} bytes)", b.dump.display(), b.dump_size),
        format!("symbols: {}", b.symbols_dir.display()),
        format!("truth:   {}", b.truth.display()),
        format!(
            "scenario {}: build {}, {} processes, {} endpoints, {} of {} dynamic ports in use ({})",
            t.scenario,
            t.build,
            t.processes.len(),
            t.endpoints.len(),
            t.dynamic_range.tcp_in_use,
            t.dynamic_range.size,
            t.derived.range
        ),
    ]
}
