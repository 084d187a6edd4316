//! The offline target: a crash dump read by `dumps`, symbols read from PDBs by `symbols`.
//!
//! Modules come from the dump's PsLoadedModuleList (KLDR_DATA_TABLE_ENTRY); each module's PDB is
//! found in the local symbol stores by the GUID and age of the RSDS record in its mapped image,
//! never by name alone, and parsed once per (GUID, age) in a [`SymbolCache`] that a triage run
//! shares across dumps.

use crate::target::{ModuleInfo, Target, TargetClock, TargetError};
use dumps::{Dump, Gva, Reader};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use symbols::{ModuleIdentity, Pdb, PdbId, SymbolCache, SymbolPath};

/// More loaded modules than any system has: the list is taken as corrupt past this.
const MAX_MODULES: usize = 4096;
/// Longest module name read from a UNICODE_STRING (bytes).
const MAX_NAME_BYTES: u16 = 520;

/// KLDR_DATA_TABLE_ENTRY offsets, stable on x64 from Vista to Windows 11 24H2 (VG headers,
/// tcpip-afd-facts 1.9 companion tables); the built-in nt table is consulted first.
const KLDR_DLL_BASE: u64 = 0x30;
const KLDR_SIZE_OF_IMAGE: u64 = 0x40;
const KLDR_BASE_DLL_NAME: u64 = 0x58;

/// A loaded module with what the offline target learnt about it.
#[derive(Debug, Clone)]
struct Module {
    info: ModuleInfo,
    pdb: Option<PdbId>,
    /// Why the module's identity could not be read completely (kept for the report).
    identity_problem: Option<String>,
}

pub struct OfflineTarget<'d> {
    dump: &'d Dump,
    reader: Reader<'d>,
    modules: Vec<Module>,
    symbol_path: SymbolPath,
    cache: Arc<SymbolCache>,
    pdbs: RefCell<HashMap<String, Result<Arc<Pdb>, String>>>,
    problems: Vec<String>,
}

impl<'d> OfflineTarget<'d> {
    /// Opens the kernel address space of `dump` and lists its modules. Symbols are loaded lazily
    /// from `symbol_path` on first use, through `cache`.
    pub fn new(dump: &'d Dump, symbol_path: SymbolPath, cache: Arc<SymbolCache>) -> Self {
        let mut me = Self {
            dump,
            reader: Reader::new(dump),
            modules: Vec::new(),
            symbol_path,
            cache,
            pdbs: RefCell::new(HashMap::new()),
            problems: Vec::new(),
        };
        me.modules = me.walk_modules();
        me
    }

    /// Problems met while listing modules and loading symbols, as sentences.
    pub fn problems(&self) -> Vec<String> {
        let mut v = self.problems.clone();
        v.extend(self.modules.iter().filter_map(|m| {
            m.identity_problem
                .as_ref()
                .map(|p| format!("{}: {p}", m.info.image_name))
        }));
        for (m, r) in self.pdbs.borrow().iter() {
            if let Err(e) = r {
                v.push(format!("symbols for {m}: {e}"));
            }
        }
        v
    }

    fn read_u64(&self, va: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        self.reader.read_exact(Gva(va), &mut b).ok()?;
        Some(u64::from_le_bytes(b))
    }

    fn unicode_string(&self, va: u64) -> Option<String> {
        let mut hdr = [0u8; 16];
        self.reader.read_exact(Gva(va), &mut hdr).ok()?;
        let len = u16::from_le_bytes([hdr[0], hdr[1]]).min(MAX_NAME_BYTES) & !1;
        let buf = u64::from_le_bytes(hdr[8..16].try_into().ok()?);
        let mut b = vec![0u8; usize::from(len)];
        self.reader.read_exact(Gva(buf), &mut b).ok()?;
        let w: Vec<u16> = b
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        Some(String::from_utf16_lossy(&w))
    }

    fn walk_modules(&mut self) -> Vec<Module> {
        let head = self.dump.header().ps_loaded_module_list;
        let kldr = symbols::layouts::nt(self.dump.header().minor_version).ok();
        let off = |f: Option<u32>, dflt: u64| f.map_or(dflt, u64::from);
        let dll_base = off(
            kldr.as_ref().map(|k| k.kldr.dll_base.preferred()),
            KLDR_DLL_BASE,
        );
        let size_of_image = off(
            kldr.as_ref().map(|k| k.kldr.size_of_image.preferred()),
            KLDR_SIZE_OF_IMAGE,
        );
        let base_name = off(
            kldr.as_ref().map(|k| k.kldr.base_dll_name.preferred()),
            KLDR_BASE_DLL_NAME,
        );
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut link = match self.read_u64(head) {
            Some(l) => l,
            None => {
                self.problems.push(format!(
                    "PsLoadedModuleList {head:#x} is not readable: no modules"
                ));
                return out;
            }
        };
        while link != head && out.len() < MAX_MODULES {
            if !seen.insert(link) || !crate::walk::is_kernel_ptr(link, 8) {
                self.problems.push(format!(
                    "module list broken at {link:#x} after {} modules",
                    out.len()
                ));
                break;
            }
            let entry = link; // InLoadOrderLinks is at offset 0
            let base = self.read_u64(entry + dll_base).unwrap_or(0);
            let size = self.read_u64(entry + size_of_image).map_or(0, |v| v as u32);
            let image_name = self.unicode_string(entry + base_name).unwrap_or_default();
            let name = if out.is_empty() {
                "nt".to_string()
            } else {
                module_name(&image_name)
            };
            let reader = |rva: u32, buf: &mut [u8]| {
                self.reader
                    .read_best_effort(Gva(base.wrapping_add(u64::from(rva))), buf)
                    .0
            };
            let (identity, problem) = match ModuleIdentity::from_reader(&reader, size) {
                Ok(id) => {
                    let mut p = Vec::new();
                    if let Err(e) = &id.pdb {
                        p.push(format!("no PDB identity ({e})"));
                    }
                    if let Err(e) = &id.file_version {
                        p.push(format!("no file version ({e})"));
                    }
                    (Some(id), (!p.is_empty()).then(|| p.join("; ")))
                }
                Err(e) => (None, Some(format!("image headers unreadable ({e})"))),
            };
            out.push(Module {
                info: ModuleInfo {
                    name,
                    image_name,
                    base,
                    size,
                    timestamp: identity.as_ref().map_or(0, |i| i.timestamp),
                    file_version: identity.as_ref().and_then(ModuleIdentity::version),
                },
                pdb: identity.as_ref().and_then(|i| i.pdb_id().cloned()),
                identity_problem: problem,
            });
            link = match self.read_u64(entry) {
                Some(l) => l,
                None => {
                    self.problems
                        .push(format!("module list entry {entry:#x} unreadable"));
                    break;
                }
            };
        }
        out
    }

    fn module(&self, name: &str) -> Result<&Module, TargetError> {
        self.modules
            .iter()
            .find(|m| m.info.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| TargetError::NoModule(name.into()))
    }

    fn pdb(&self, name: &str) -> Result<(Arc<Pdb>, u64), String> {
        let m = self.module(name).map_err(|e| e.to_string())?;
        let base = m.info.base;
        if let Some(r) = self.pdbs.borrow().get(&m.info.name) {
            return r.clone().map(|p| (p, base));
        }
        let r = match &m.pdb {
            Some(id) => self
                .cache
                .find_and_load(&self.symbol_path, id, &m.info.image_name)
                .map_err(|e| e.to_string()),
            None => Err(format!(
                "{} has no readable RSDS record, so its PDB cannot be identified",
                m.info.image_name
            )),
        };
        self.pdbs
            .borrow_mut()
            .insert(m.info.name.clone(), r.clone());
        r.map(|p| (p, base))
    }
}

/// `tcpip.sys` -> `tcpip`, as the debugger names modules.
fn module_name(image: &str) -> String {
    let file = image.rsplit(['\\', '/']).next().unwrap_or(image);
    file.rsplit_once('.')
        .map_or(file, |(stem, _)| stem)
        .to_ascii_lowercase()
}

impl Target for OfflineTarget<'_> {
    fn read_virtual(&self, va: u64, buf: &mut [u8]) -> Result<usize, TargetError> {
        match self.reader.read_best_effort(Gva(va), buf) {
            (0, Some(e)) if !buf.is_empty() => Err(TargetError::Unreadable {
                va,
                len: buf.len(),
                reason: e.to_string(),
            }),
            (n, _) => Ok(n),
        }
    }

    fn modules(&self) -> Result<Vec<ModuleInfo>, TargetError> {
        Ok(self.modules.iter().map(|m| m.info.clone()).collect())
    }

    fn symbol_address(&self, module: &str, symbol: &str) -> Result<u64, TargetError> {
        let no = |reason: String| TargetError::NoSymbol {
            module: module.into(),
            symbol: symbol.into(),
            reason,
        };
        let (pdb, base) = self.pdb(module).map_err(no)?;
        let rva = pdb.symbol_rva(symbol).map_err(|e| no(e.to_string()))?;
        Ok(base + u64::from(rva))
    }

    fn type_size(&self, module: &str, ty: &str) -> Result<u64, TargetError> {
        let no = |reason: String| TargetError::NoType {
            module: module.into(),
            ty: ty.into(),
            field: None,
            reason,
        };
        let (pdb, _) = self.pdb(module).map_err(no)?;
        pdb.type_size(ty).map_err(|e| no(e.to_string()))
    }

    fn field_offset(&self, module: &str, ty: &str, field: &str) -> Result<u64, TargetError> {
        let no = |reason: String| TargetError::NoType {
            module: module.into(),
            ty: ty.into(),
            field: Some(field.into()),
            reason,
        };
        let (pdb, _) = self.pdb(module).map_err(no)?;
        pdb.field_offset(ty, field).map_err(|e| no(e.to_string()))
    }

    fn clock(&self) -> TargetClock {
        let h = self.dump.header();
        TargetClock {
            system_time: Some(h.system_time).filter(|&t| t != 0),
            uptime: Some(h.system_uptime).filter(|&t| t != 0),
        }
    }

    fn build_number(&self) -> Option<u32> {
        Some(self.dump.header().minor_version).filter(|&b| b != 0)
    }

    fn process_list_head(&self) -> Option<u64> {
        Some(self.dump.header().ps_active_process_head)
            .filter(|&h| crate::walk::is_kernel_ptr(h, 8))
    }

    fn describe(&self) -> String {
        let h = self.dump.header();
        let path = self
            .dump
            .path()
            .map_or("(in memory)".into(), |p| p.display().to_string());
        format!(
            "{path} ({:?}, DumpType {})",
            h.dump_type,
            h.dump_type.value()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::module_name;

    #[test]
    fn module_names_as_the_debugger_spells_them() {
        assert_eq!(module_name("tcpip.sys"), "tcpip");
        assert_eq!(
            module_name("\\SystemRoot\\system32\\drivers\\AFD.SYS"),
            "afd"
        );
        assert_eq!(module_name("hal"), "hal");
    }
}
