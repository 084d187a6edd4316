//! One parsed PDB per (GUID, age), shared by every dump of a run.
//!
//! A triage of a thousand dumps of one Windows build asks for the same `ntkrnlmp.pdb` a thousand
//! times; the cache opens it once and hands out the same `Arc<Pdb>` (whose own lazy indexes and
//! answers are then shared too). Concurrent first requests for one PDB wait for a single load.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::path::{MissingPdb, SymbolPath};
use crate::pdb::{Pdb, PdbError};
use crate::pe::PdbId;

/// Why no symbols could be had for a module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SymbolError {
    /// No local store has the PDB; the message says what to fetch.
    #[error(transparent)]
    Missing(Box<MissingPdb>),
    /// A PDB was found but could not be used.
    #[error(transparent)]
    Pdb(#[from] PdbError),
}

/// How the cache has been used, for reports and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// PDB files opened and parsed.
    pub loads: usize,
    /// Requests answered with an already loaded PDB.
    pub hits: usize,
}

type Key = ([u8; 16], u32);
type Slot = Arc<Mutex<Option<Arc<Pdb>>>>;

/// Thread-safe cache of loaded PDBs keyed by (GUID, age). Share it by reference or in an `Arc`.
#[derive(Debug, Default)]
pub struct SymbolCache {
    slots: Mutex<HashMap<Key, Slot>>,
    loads: AtomicUsize,
    hits: AtomicUsize,
}

impl SymbolCache {
    /// An empty cache.
    pub fn new() -> SymbolCache {
        SymbolCache::default()
    }

    /// The PDB for `id`, loading it from `path` unless a PDB with the same GUID and age is already
    /// loaded. The file is checked against `id` before use. Failed loads are not remembered, so a
    /// corrected file is picked up on the next request.
    pub fn load(&self, path: &Path, id: &PdbId) -> Result<Arc<Pdb>, PdbError> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.entry((id.guid, id.age)).or_default().clone()
        };
        // Holding the slot (not the map) while loading lets other PDBs load in parallel and makes
        // concurrent requests for this one wait for the first.
        let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pdb) = slot.as_ref() {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(pdb.clone());
        }
        let pdb = Arc::new(Pdb::open(path, id)?);
        self.loads.fetch_add(1, Ordering::Relaxed);
        *slot = Some(pdb.clone());
        Ok(pdb)
    }

    /// The already loaded PDB for `id`, if any (no file access).
    pub fn get(&self, id: &PdbId) -> Option<Arc<Pdb>> {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(id.guid, id.age))
            .cloned()?;
        let pdb = slot.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if pdb.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        pdb
    }

    /// Finds the PDB for `id` on `path` (unless already loaded) and loads it. `module` is the image
    /// name used in a [`MissingPdb`] message (`tcpip.sys`).
    pub fn find_and_load(
        &self,
        path: &SymbolPath,
        id: &PdbId,
        module: &str,
    ) -> Result<Arc<Pdb>, SymbolError> {
        if let Some(pdb) = self.get(id) {
            return Ok(pdb);
        }
        let file = path.find_pdb(id, module).map_err(SymbolError::Missing)?;
        Ok(self.load(&file, id)?)
    }

    /// Counters since the cache was made.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            loads: self.loads.load(Ordering::Relaxed),
            hits: self.hits.load(Ordering::Relaxed),
        }
    }
}
