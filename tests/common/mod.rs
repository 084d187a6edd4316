//! What the engine's integration tests share: building a scenario dump into a temporary
//! directory and analysing a dump with the symbols the builder wrote.
#![allow(dead_code)] // each test binary uses its own subset

use portleak::analysis::{analyze, Analysis, Options};
use portleak::offline::OfflineTarget;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use symbols::{SymbolCache, SymbolPath};
use synth::{Built, Scenario};

/// A fresh directory for one test (`tag` keeps parallel tests apart).
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("portleak-test-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temporary directory");
    d
}

/// Builds the embedded scenario `name` into `temp_dir(tag)`.
pub fn build(name: &str, tag: &str) -> (Built, PathBuf) {
    let text = synth::scenarios::get(name).unwrap_or_else(|| panic!("no embedded scenario {name}"));
    let scenario = Scenario::from_toml(text).expect("scenario parses");
    let dir = temp_dir(tag);
    let built = synth::build(&scenario, &dir).expect("scenario builds");
    (built, dir)
}

/// The symbol path of a builder's two-tier store.
pub fn symbol_path(store: &Path) -> SymbolPath {
    SymbolPath::parse(&format!("srv*{}", store.display()))
}

/// Opens `dump` and runs the analysis with the symbols in `store`; open errors as text.
pub fn analyze_dump(dump: &Path, store: &Path) -> Result<Analysis, String> {
    let d = dumps::Dump::open(dump).map_err(|e| e.to_string())?;
    let target = OfflineTarget::new(&d, symbol_path(store), Arc::new(SymbolCache::new()));
    Ok(analyze(&target, &Options::default()))
}
