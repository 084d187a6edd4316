//! Symbol paths in the debugger's syntax (`_NT_SYMBOL_PATH`, `.sympath`, `--symbols`).
//!
//! Elements are separated by `;`. Each is one of
//! - `srv*[store*]...[*url]` or `symsrv*<dll>*[store*]...[*url]`: a symbol-server chain, whose local
//!   directories are downstream stores (searched here) and whose `http(s)://` entries are servers
//!   (never contacted: only quoted in the instructions of a [`MissingPdb`]);
//! - `cache*[dir]`: a downstream cache for the elements after it (searched as a store);
//! - anything else: a plain directory, searched both as a store and flat.
//!
//! Both `\` and `/` separate directories. Keywords are case-insensitive; blanks around elements and
//! empty elements (`;;`, a trailing `;`) are ignored, as the debugger does.

use std::path::PathBuf;

pub use crate::store::{Lookup, MissingPdb};

/// The environment variable debuggers read their symbol path from.
pub const ENV_VAR: &str = "_NT_SYMBOL_PATH";
/// Searched before [`ENV_VAR`] by the debuggers.
pub const ALT_ENV_VAR: &str = "_NT_ALT_SYMBOL_PATH";
/// Microsoft's public symbol server, suggested when the user's path names none.
pub const MICROSOFT_SERVER: &str = "https://msdl.microsoft.com/download/symbols";

/// One `;`-separated element of a symbol path.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SymbolPathElement {
    /// `srv*…` / `symsrv*dll*…`: local downstream stores and upstream servers, in order.
    Server {
        /// Local store directories as written (`C:\symbols`).
        stores: Vec<String>,
        /// `http://` / `https://` servers as written.
        servers: Vec<String>,
    },
    /// `cache*dir`; `None` for `cache*` with the debugger's default cache, unknown offline.
    Cache(Option<String>),
    /// A plain directory as written.
    Dir(String),
}

/// A parsed symbol path. Only its local directories are ever read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SymbolPath {
    text: String,
    elements: Vec<SymbolPathElement>,
}

impl SymbolPath {
    /// Parses a symbol path. Never fails: anything that is not a known `keyword*` form is a directory.
    pub fn parse(text: &str) -> SymbolPath {
        let elements = text.split(';').filter_map(parse_element).collect();
        SymbolPath {
            text: text.trim().to_string(),
            elements,
        }
    }

    /// The path the debuggers would use from the environment: `_NT_ALT_SYMBOL_PATH` (searched
    /// first, as DbgHelp does) then `_NT_SYMBOL_PATH`; `None` when both are unset or blank.
    pub fn from_env() -> Option<SymbolPath> {
        Self::from_vars(
            std::env::var(ALT_ENV_VAR).ok().as_deref(),
            std::env::var(ENV_VAR).ok().as_deref(),
        )
    }

    /// [`from_env`](Self::from_env) with the two variables' values given.
    pub fn from_vars(alt: Option<&str>, main: Option<&str>) -> Option<SymbolPath> {
        let mut p = SymbolPath::default();
        for v in [alt, main].into_iter().flatten() {
            p.extend(SymbolPath::parse(v));
        }
        (!p.elements.is_empty()).then_some(p)
    }

    /// Appends the elements of another path (e.g. `--symbols` first, then `_NT_SYMBOL_PATH`).
    pub fn extend(&mut self, other: SymbolPath) {
        if !other.text.is_empty() {
            if !self.text.is_empty() {
                self.text.push(';');
            }
            self.text.push_str(&other.text);
        }
        self.elements.extend(other.elements);
    }

    /// The elements in search order.
    pub fn elements(&self) -> &[SymbolPathElement] {
        &self.elements
    }

    /// The path as the user wrote it (trimmed).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// True when there is nothing to search.
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// Every local directory to search, in order, with whether it is a store (`true`) or a plain
    /// directory (`false`, searched as a store and flat). Duplicates are dropped.
    pub fn local_dirs(&self) -> Vec<(String, bool)> {
        let mut out: Vec<(String, bool)> = Vec::new();
        let mut push = |d: &String, store: bool| {
            if !out.iter().any(|(o, _)| o == d) {
                out.push((d.clone(), store));
            }
        };
        for e in &self.elements {
            match e {
                SymbolPathElement::Server { stores, .. } => {
                    stores.iter().for_each(|d| push(d, true))
                }
                SymbolPathElement::Cache(Some(d)) => push(d, true),
                SymbolPathElement::Cache(None) => {}
                SymbolPathElement::Dir(d) => push(d, false),
            }
        }
        out
    }

    /// The symbol servers the path names (never contacted).
    pub fn servers(&self) -> Vec<&str> {
        self.elements
            .iter()
            .flat_map(|e| match e {
                SymbolPathElement::Server { servers, .. } => {
                    servers.iter().map(String::as_str).collect()
                }
                _ => Vec::new(),
            })
            .collect()
    }
}

fn is_url(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://")
}

fn parse_element(raw: &str) -> Option<SymbolPathElement> {
    let el = raw.trim();
    if el.is_empty() {
        return None;
    }
    let parts: Vec<&str> = el.split('*').map(str::trim).collect();
    let keyword = parts[0].to_ascii_lowercase();
    let rest: &[&str] = match keyword.as_str() {
        "srv" if parts.len() > 1 => &parts[1..],
        // symsrv*<dll>*...: the second part names the DLL that implements the server.
        "symsrv" if parts.len() > 1 => parts.get(2..).unwrap_or(&[]),
        "cache" if parts.len() > 1 => {
            let dir = parts[1..]
                .iter()
                .find(|p| !p.is_empty())
                .map(|s| s.to_string());
            return Some(SymbolPathElement::Cache(dir));
        }
        _ if parts.len() == 1 => return Some(SymbolPathElement::Dir(el.to_string())),
        // `*dir` (a leading star) is the older spelling of a downstream store.
        "" => &parts[1..],
        _ => return Some(SymbolPathElement::Dir(el.to_string())),
    };
    let mut stores = Vec::new();
    let mut servers = Vec::new();
    for p in rest.iter().filter(|p| !p.is_empty()) {
        if is_url(p) {
            servers.push(p.to_string());
        } else {
            stores.push(p.to_string());
        }
    }
    Some(SymbolPathElement::Server { stores, servers })
}

/// A directory as written in a symbol path, made usable on this OS: on non-Windows hosts `\` is
/// turned into `/` so `dumps\symbols` and `dumps/symbols` name the same place.
pub fn local_path(written: &str) -> PathBuf {
    if cfg!(windows) {
        PathBuf::from(written)
    } else {
        PathBuf::from(written.replace('\\', "/"))
    }
}

#[cfg(test)]
#[path = "path_tests.rs"]
mod tests;
