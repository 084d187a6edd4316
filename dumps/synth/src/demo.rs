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

/// Print-ready lines telling the user what was written and what to run next.
pub fn describe(b: &Built) -> Vec<String> {
    vec![
        format!("dump:    {}", b.dump.display()),
        format!("symbols: {}", b.symbols_dir.display()),
        format!("truth:   {}", b.truth.display()),
        format!(
            "try:     portleak report {} --symbols {}",
            b.dump.display(),
            b.symbols_dir.display()
        ),
    ]
}
