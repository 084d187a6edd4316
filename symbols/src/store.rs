//! Offline search of local symbol stores, and the message for a PDB that is nowhere.
//!
//! Store layouts (symstore): two-tier `<store>/<name>/<GUIDAGE>/<name>`; the index2 variant
//! `<store>/<first two chars of name>/<name>/<GUIDAGE>/<name>` used when the store root holds
//! `index2.txt`; `file.ptr` redirections (`PATH:<file>`) left by `symstore /p`; compressed `.pd_`
//! files (CAB, which we cannot expand and say so). Plain directories are also searched flat, where
//! the file name says nothing of the build, so a flat PDB is accepted only if its own GUID and age
//! match the module's.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::path::{local_path, SymbolPath, MICROSOFT_SERVER};
use crate::pe::PdbId;

/// One place searched and what was found there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The file (or directory) checked.
    pub path: PathBuf,
    /// What was there: "not present", "a different build (…)", ….
    pub outcome: String,
}

/// No local store holds the PDB a module needs. Its `Display` is the full message for the user:
/// the module, the PDB identity, every place looked, and how to fetch the exact file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct MissingPdb {
    /// Module image name (`tcpip.sys`).
    pub module: String,
    /// What the module's RSDS record asks for.
    pub id: PdbId,
    /// Every place searched, in order.
    pub looked: Vec<Lookup>,
    /// The symbol path searched, as written.
    pub symbol_path: String,
    /// The symbol server to quote in the instructions (the user's first, or Microsoft's).
    pub server: String,
    /// The local store to suggest downloading into (the user's first store, or `C:\symbols`).
    pub store: String,
}

impl MissingPdb {
    /// The direct download URL on the symbol server for this exact build.
    pub fn url(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.server.trim_end_matches('/'),
            self.id.name,
            self.id.store_key(),
            self.id.name
        )
    }

    /// A `symchk` command that fetches the PDB into the suggested store; it must run on a Windows
    /// machine that has the same build of the module.
    pub fn symchk(&self) -> String {
        format!(
            "symchk /r {} /s srv*{}*{}",
            windows_location(&self.module),
            self.store,
            self.server
        )
    }

    /// Where the file goes in the suggested store.
    pub fn store_destination(&self) -> String {
        format!(
            "{}\\{}\\{}\\{}",
            self.store.trim_end_matches(['\\', '/']),
            self.id.name,
            self.id.store_key(),
            self.id.name
        )
    }
}

impl fmt::Display for MissingPdb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "no symbols for {}: it needs {} with GUID {} and age {} (store key {}), and no local symbol store has it.",
            self.module,
            self.id.name,
            self.id.guid_braced(),
            self.id.age,
            self.id.store_key()
        )?;
        if self.looked.is_empty() {
            writeln!(f, "The symbol path is empty, so nothing was searched: pass --symbols or set _NT_SYMBOL_PATH.")?;
        } else {
            writeln!(f, "Looked in (symbol path \"{}\"):", self.symbol_path)?;
            for l in &self.looked {
                writeln!(f, "  {}: {}", l.path.display(), l.outcome)?;
            }
        }
        writeln!(
            f,
            "portleak never downloads symbols. Fetch this exact file:"
        )?;
        writeln!(f, "  {}", self.url())?;
        writeln!(
            f,
            "and save it as {}, or on a Windows machine with the same {} build run:",
            self.store_destination(),
            self.module
        )?;
        writeln!(f, "  {}", self.symchk())?;
        write!(f, "then run again with --symbols \"srv*{}\".", self.store)
    }
}

/// Where Windows keeps a kernel module, for the `symchk /r` suggestion. The multiprocessor kernel
/// is loaded from `ntoskrnl.exe` whatever its PDB is called (`ntkrnlmp.pdb`).
fn windows_location(module: &str) -> String {
    let lower = module.to_ascii_lowercase();
    if lower.starts_with("ntkrnl")
        || lower.starts_with("ntkrpa")
        || lower == "ntoskrnl.exe"
        || lower == "nt"
    {
        r"C:\Windows\System32\ntoskrnl.exe".to_string()
    } else if lower.ends_with(".sys") {
        format!(r"C:\Windows\System32\drivers\{module}")
    } else {
        format!(r"C:\Windows\System32\{module}")
    }
}

impl SymbolPath {
    /// Finds the PDB for `id` in the local stores and directories of this path, matched by GUID and
    /// age, never by name alone. `module` is the image name used in the error (`tcpip.sys`).
    pub fn find_pdb(&self, id: &PdbId, module: &str) -> Result<PathBuf, Box<MissingPdb>> {
        let mut looked = Vec::new();
        for (dir, is_store) in self.local_dirs() {
            let root = local_path(&dir);
            if let Some(p) = search_store(&root, id, &mut looked) {
                return Ok(p);
            }
            if !is_store {
                if let Some(p) = search_flat(&root, id, &mut looked) {
                    return Ok(p);
                }
            }
        }
        let store = self
            .elements()
            .iter()
            .find_map(|e| match e {
                crate::path::SymbolPathElement::Server { stores, .. } => stores.first().cloned(),
                crate::path::SymbolPathElement::Cache(Some(d)) => Some(d.clone()),
                _ => None,
            })
            .unwrap_or_else(|| r"C:\symbols".to_string());
        let server = self
            .servers()
            .first()
            .map_or(MICROSOFT_SERVER.to_string(), |s| s.to_string());
        Err(Box::new(MissingPdb {
            module: module.to_string(),
            id: id.clone(),
            looked,
            symbol_path: self.text().to_string(),
            server,
            store,
        }))
    }
}

/// The spellings to try for a name: as written, then lower case (stores made on Windows are
/// case-insensitive, Linux file systems are not).
fn spellings(s: &str) -> Vec<String> {
    let lower = s.to_ascii_lowercase();
    if lower == s {
        vec![s.to_string()]
    } else {
        vec![s.to_string(), lower]
    }
}

fn first_existing(base: &Path, names: &[Vec<String>]) -> (PathBuf, bool) {
    // Every combination of spellings, first component varying slowest; bounded by 2^len.
    let mut combos: Vec<PathBuf> = vec![base.to_path_buf()];
    for variants in names {
        combos = combos
            .iter()
            .flat_map(|p| variants.iter().map(move |v| p.join(v)))
            .collect();
    }
    match combos.iter().find(|p| p.exists()) {
        Some(p) => (p.clone(), true),
        None => (combos[0].clone(), false),
    }
}

fn search_store(root: &Path, id: &PdbId, looked: &mut Vec<Lookup>) -> Option<PathBuf> {
    if !root.is_dir() {
        looked.push(Lookup {
            path: root.to_path_buf(),
            outcome: "directory does not exist".into(),
        });
        return None;
    }
    let name = spellings(&id.name);
    let key = vec![id.store_key(), id.store_key().to_ascii_lowercase()];
    let mut bases = vec![root.to_path_buf()];
    if root.join("index2.txt").exists() {
        // index2 stores add a first level made of the first two characters of the file name.
        let prefix: String = id.name.chars().take(2).collect();
        let (p, _) = first_existing(root, &[spellings(&prefix)]);
        bases.insert(0, p);
    }
    for base in bases {
        let (keydir, _) = first_existing(&base, &[name.clone(), key.clone()]);
        let (file, found) = first_existing(&keydir, std::slice::from_ref(&name));
        if found {
            return Some(file);
        }
        looked.push(Lookup {
            path: file,
            outcome: "not present".into(),
        });
        if let Some(p) = follow_file_ptr(&keydir, looked) {
            return Some(p);
        }
        let mut packed = id.name.clone();
        packed.pop();
        packed.push('_');
        let (cab, found) = first_existing(&keydir, &[spellings(&packed)]);
        if found {
            looked.push(Lookup {
                path: cab,
                outcome: "present but compressed (CAB); expand it (`expand -r`) next to it".into(),
            });
        }
    }
    None
}

/// `symstore add /p` leaves `file.ptr` holding `PATH:<file>` (or `MSG:<text>`) instead of the file.
fn follow_file_ptr(keydir: &Path, looked: &mut Vec<Lookup>) -> Option<PathBuf> {
    let ptr = keydir.join("file.ptr");
    let meta = std::fs::metadata(&ptr).ok()?;
    if meta.len() > 4096 {
        looked.push(Lookup {
            path: ptr,
            outcome: "file.ptr is too large to be a pointer".into(),
        });
        return None;
    }
    let text = std::fs::read_to_string(&ptr).ok()?;
    let text = text.trim();
    if let Some(target) = text.strip_prefix("PATH:") {
        let target = local_path(target.trim());
        if target.is_file() {
            return Some(target);
        }
        looked.push(Lookup {
            path: target,
            outcome: format!("named by {} but not present", ptr.display()),
        });
    } else {
        looked.push(Lookup {
            path: ptr,
            outcome: format!("says {text:?}"),
        });
    }
    None
}

fn search_flat(root: &Path, id: &PdbId, looked: &mut Vec<Lookup>) -> Option<PathBuf> {
    let (file, found) = first_existing(root, &[spellings(&id.name)]);
    if !found {
        looked.push(Lookup {
            path: file,
            outcome: "not present".into(),
        });
        return None;
    }
    match crate::pdb::read_identity(&file) {
        Ok((guid, age)) if guid == id.guid && age == id.age => Some(file),
        Ok((guid, age)) => {
            let other = PdbId {
                name: id.name.clone(),
                guid,
                age,
            };
            looked.push(Lookup {
                path: file,
                outcome: format!(
                    "a different build (GUID {}, age {}), ignored",
                    other.guid_braced(),
                    age
                ),
            });
            None
        }
        Err(e) => {
            looked.push(Lookup {
                path: file,
                outcome: format!("unreadable as a PDB ({e})"),
            });
            None
        }
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
