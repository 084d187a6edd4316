//! One PDB file: identity check, type sizes, dotted field offsets and symbol RVAs.
//!
//! Built on the `pdb` crate (0.8) for the container (MSF streams, PDB info and DBI headers, the
//! global symbol stream and the section address map). Its stream objects are neither `Send` nor
//! self-contained, so a [`Pdb`] keeps the file's bytes and builds its own owned indexes lazily:
//! - symbols: one pass over the global symbol stream on the first symbol query, into a name → RVA
//!   map (publics `S_PUB32`, globals `S_GDATA32`/`S_LDATA32`) plus typedef names (`S_UDT`);
//! - types: on the first type query, one pass over the TPI stream records where each record
//!   starts and the index of every complete struct/union/enum by name (see tpi.rs for why the
//!   records are decoded here rather than by the crate). A query then decodes only the records
//!   its path walks; answers are memoised.
//!
//! Everything is behind locks, so one `Arc<Pdb>` serves every thread of a triage run.

mod fieldlist;
mod names;
mod nodes;
mod resolve;
mod tpi;

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{OnceLock, RwLock};

use ::pdb::FallibleIterator;

use crate::pe::PdbId;

pub use resolve::{Bitfield, FieldInfo, TypeDesc};

/// Symbol record kinds (cvinfo.h SYM_ENUM_e): typedef, module-local data, global data, public.
const S_UDT: u16 = 0x1108;
const S_LDATA32: u16 = 0x110c;
const S_GDATA32: u16 = 0x110d;
const S_PUB32: u16 = 0x110e;

/// PDB files larger than this are refused before reading: kernel PDBs are tens of MB.
const MAX_PDB_BYTES: u64 = 2 << 30;

/// Why a PDB could not be used or did not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PdbError {
    /// The file could not be read.
    #[error("cannot read {path}: {reason}")]
    Io { path: String, reason: String },
    /// The file is not a PDB, or is corrupt where we read it.
    #[error("{path} is not a readable PDB: {detail}")]
    Format { path: String, detail: String },
    /// The PDB belongs to another build than the module.
    #[error("{path} is not the PDB of this module: the module wants GUID {expected_guid} age {expected_age}, the file is GUID {found_guid} age {found_age}")]
    Mismatch {
        path: String,
        expected_guid: String,
        expected_age: u32,
        found_guid: String,
        found_age: u32,
    },
    /// The PDB has no type records at all (Microsoft's public tcpip.pdb/afd.pdb are like that).
    #[error("{pdb} carries no type information (public symbols only), so {ty} is not in it")]
    NoTypes { pdb: String, ty: String },
    /// The type is not defined in the PDB.
    #[error("{pdb} has no type named {ty}")]
    NoType { pdb: String, ty: String },
    /// A component of a dotted field path does not resolve.
    #[error("{ty}.{path}: {detail}")]
    NoField {
        ty: String,
        path: String,
        detail: String,
    },
    /// The symbol is not among the PDB's publics and globals.
    #[error("{pdb} has no public or global symbol {name}")]
    NoSymbol { pdb: String, name: String },
}

impl PdbError {
    fn format(path: &Path, e: impl std::fmt::Display) -> PdbError {
        PdbError::Format {
            path: path.display().to_string(),
            detail: e.to_string(),
        }
    }
}

/// Reads only the identity (GUID, DBI age) of the PDB at `path`: what a flat directory search
/// needs to accept or reject a file named right.
pub fn read_identity(path: &Path) -> Result<([u8; 16], u32), PdbError> {
    let file = std::fs::File::open(path).map_err(|e| PdbError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut pdb = ::pdb::PDB::open(file).map_err(|e| PdbError::format(path, e))?;
    identity_of(&mut pdb, path)
}

fn identity_of<'s, S: ::pdb::Source<'s> + 's>(
    pdb: &mut ::pdb::PDB<'s, S>,
    path: &Path,
) -> Result<([u8; 16], u32), PdbError> {
    let info = pdb
        .pdb_information()
        .map_err(|e| PdbError::format(path, e))?;
    let (d1, d2, d3, d4) = info.guid.as_fields();
    let mut guid = [0u8; 16];
    guid[0..4].copy_from_slice(&d1.to_le_bytes());
    guid[4..6].copy_from_slice(&d2.to_le_bytes());
    guid[6..8].copy_from_slice(&d3.to_le_bytes());
    guid[8..16].copy_from_slice(d4);
    // The image's RSDS age equals the DBI age; the info-stream age may have been bumped by tools
    // that rewrote the PDB later (pdb crate docs on PDBInformation::age), so it is only a fallback.
    let age = match pdb.debug_information() {
        Ok(dbi) => dbi.age().unwrap_or(info.age),
        Err(_) => info.age,
    };
    Ok((guid, age))
}

/// A loaded PDB. Cheap to share (`Arc<Pdb>`); all queries take `&self`.
#[derive(Debug)]
pub struct Pdb {
    path: PathBuf,
    id: PdbId,
    bytes: Vec<u8>,
    symbols: OnceLock<Result<Symbols, PdbError>>,
    tpi: OnceLock<Result<tpi::Tpi, PdbError>>,
    /// How many times the type stream was indexed (once; checked by tests).
    tpi_builds: AtomicUsize,
    answers: RwLock<Answers>,
}

/// Memoised answers: type name → field path ("" for the type itself) → answer.
type Answers = HashMap<String, HashMap<String, Result<FieldInfo, PdbError>>>;

#[derive(Debug, Default)]
struct Symbols {
    rvas: names::NameIndex,
    typedefs: names::NameIndex,
}

impl Pdb {
    /// Opens the PDB at `path` and checks that it is the one `id` names (GUID equal, DBI age
    /// equal to the RSDS age).
    pub fn open(path: &Path, id: &PdbId) -> Result<Pdb, PdbError> {
        let pdb = Pdb::open_unchecked(path)?;
        if pdb.id.guid != id.guid || pdb.id.age != id.age {
            return Err(PdbError::Mismatch {
                path: path.display().to_string(),
                expected_guid: id.guid_braced(),
                expected_age: id.age,
                found_guid: pdb.id.guid_braced(),
                found_age: pdb.id.age,
            });
        }
        Ok(Pdb {
            id: PdbId {
                name: id.name.clone(),
                ..pdb.id.clone()
            },
            ..pdb
        })
    }

    /// Opens a PDB without checking it against a module (tools, tests). Its [`id`](Self::id) name
    /// is the file name.
    pub fn open_unchecked(path: &Path) -> Result<Pdb, PdbError> {
        let io = |e: std::io::Error| PdbError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_PDB_BYTES {
            return Err(PdbError::format(
                path,
                format!("{len} bytes is larger than any PDB we accept ({MAX_PDB_BYTES})"),
            ));
        }
        let bytes = std::fs::read(path).map_err(io)?;
        Pdb::from_bytes(bytes, path)
    }

    /// A PDB already in memory; `path` only names it in messages.
    pub fn from_bytes(bytes: Vec<u8>, path: &Path) -> Result<Pdb, PdbError> {
        let mut pdb =
            ::pdb::PDB::open(Cursor::new(&bytes[..])).map_err(|e| PdbError::format(path, e))?;
        let (guid, age) = identity_of(&mut pdb, path)?;
        drop(pdb);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Pdb {
            path: path.to_path_buf(),
            id: PdbId { name, guid, age },
            bytes,
            symbols: OnceLock::new(),
            tpi: OnceLock::new(),
            tpi_builds: AtomicUsize::new(0),
            answers: RwLock::new(HashMap::new()),
        })
    }

    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// GUID and age read from the file (name from the module when opened with [`open`](Self::open)).
    pub fn id(&self) -> &PdbId {
        &self.id
    }

    /// True when the PDB has type records (ntkrnlmp.pdb does; public tcpip.pdb/afd.pdb do not).
    pub fn has_types(&self) -> bool {
        self.tpi().is_ok_and(|t| t.len() > 0)
    }

    /// RVA of a public (`S_PUB32`) or global data (`S_GDATA32`/`S_LDATA32`) symbol, by exact name.
    pub fn symbol_rva(&self, name: &str) -> Result<u32, PdbError> {
        let syms = self.symbols()?;
        // A C++ global at namespace scope is public only under its decorated name
        // (`?Name@@3...`); accept that spelling when the plain one is absent.
        let decorated = || {
            (!name.is_empty() && !name.starts_with('?'))
                .then(|| syms.rvas.first_with_prefix(&format!("?{name}@@")))
                .flatten()
        };
        syms.rvas
            .get(name)
            .or_else(decorated)
            .ok_or_else(|| PdbError::NoSymbol {
                pdb: self.id.name.clone(),
                name: name.to_string(),
            })
    }

    /// Number of public and global symbol records with an RVA (a name listed both as public and
    /// as global counts twice).
    pub fn symbol_count(&self) -> Result<usize, PdbError> {
        Ok(self.symbols()?.rvas.len())
    }

    /// Size in bytes of a struct, union or enum, by its PDB name (`_EPROCESS`) or typedef name.
    pub fn type_size(&self, ty: &str) -> Result<u64, PdbError> {
        self.answer(ty, "", |a| a.as_ref().map(|f| f.size).map_err(Clone::clone))
    }

    /// Whether the PDB defines `ty` (a complete struct/union/enum or a typedef of one).
    pub fn has_type(&self, ty: &str) -> bool {
        self.type_size(ty).is_ok()
    }

    /// Offset, size, bitfield and type of a field by dotted path (`Pcb.DirectoryTableBase`),
    /// through embedded structs and unions and anonymous members; `Name[3]` indexes an array.
    /// A path cannot go through a pointer (as with `dt`).
    pub fn field(&self, ty: &str, path: &str) -> Result<FieldInfo, PdbError> {
        Self::check_path(ty, path)?;
        self.answer(ty, path, Clone::clone)
    }

    /// Shorthand for `field(ty, path)?.offset`, without copying the field's type description.
    pub fn field_offset(&self, ty: &str, path: &str) -> Result<u64, PdbError> {
        Self::check_path(ty, path)?;
        self.answer(ty, path, |a| {
            a.as_ref().map(|f| f.offset).map_err(Clone::clone)
        })
    }

    fn check_path(ty: &str, path: &str) -> Result<(), PdbError> {
        if path.trim().is_empty() {
            return Err(PdbError::NoField {
                ty: ty.to_string(),
                path: path.to_string(),
                detail: "the field path is empty".into(),
            });
        }
        Ok(())
    }

    /// Looks the answer up (resolving it the first time) and hands it to `f` without copying it:
    /// a cached `field_offset` is then a read lock and two hash lookups.
    fn answer<R>(&self, ty: &str, path: &str, f: impl Fn(&Result<FieldInfo, PdbError>) -> R) -> R {
        if let Some(a) = self
            .answers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(ty)
            .and_then(|m| m.get(path))
        {
            return f(a);
        }
        let result = self.resolve_cold(ty, path);
        let out = f(&result);
        self.answers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(ty.to_string())
            .or_default()
            .insert(path.to_string(), result);
        out
    }

    fn resolve_cold(&self, ty: &str, path: &str) -> Result<FieldInfo, PdbError> {
        let tpi = self.tpi()?;
        if tpi.len() == 0 {
            return Err(PdbError::NoTypes {
                pdb: self.id.name.clone(),
                ty: ty.to_string(),
            });
        }
        // Typedef names come from the symbol stream; read it only when a tag name does not match.
        let typedefs = if tpi.by_name(ty).is_some() {
            None
        } else {
            self.symbols().ok().map(|s| &s.typedefs)
        };
        let types = resolve::Types { tpi, typedefs };
        let root = types.lookup(ty).ok_or_else(|| PdbError::NoType {
            pdb: self.id.name.clone(),
            ty: ty.to_string(),
        })?;
        resolve::walk(&types, root, ty, path)
    }

    fn tpi(&self) -> Result<&tpi::Tpi, PdbError> {
        self.tpi
            .get_or_init(|| self.read_tpi())
            .as_ref()
            .map_err(Clone::clone)
    }

    fn read_tpi(&self) -> Result<tpi::Tpi, PdbError> {
        self.tpi_builds.fetch_add(1, Ordering::Relaxed);
        let path = &self.path;
        let mut pdb = ::pdb::PDB::open(Cursor::new(&self.bytes[..]))
            .map_err(|e| PdbError::format(path, e))?;
        // Stream 2 is the TPI stream in every PDB 7.0 (LLVM PdbStream docs, "fixed streams").
        let data = match pdb
            .raw_stream(::pdb::StreamIndex(2))
            .map_err(|e| PdbError::format(path, e))?
        {
            Some(s) => s.as_slice().to_vec(),
            None => Vec::new(),
        };
        if data.is_empty() {
            return Ok(tpi::Tpi::empty());
        }
        tpi::Tpi::index(data).map_err(|e| PdbError::format(path, format!("type stream: {e}")))
    }

    fn symbols(&self) -> Result<&Symbols, PdbError> {
        self.symbols
            .get_or_init(|| self.read_symbols())
            .as_ref()
            .map_err(Clone::clone)
    }

    fn read_symbols(&self) -> Result<Symbols, PdbError> {
        let path = &self.path;
        let err = |e: ::pdb::Error| PdbError::format(path, e);
        let mut pdb = ::pdb::PDB::open(Cursor::new(&self.bytes[..])).map_err(err)?;
        let map = pdb.address_map().map_err(err)?;
        let table = pdb.global_symbols().map_err(err)?;
        let (mut rvas, mut typedefs) = (names::NameIndex::default(), names::NameIndex::default());
        let mut iter = table.iter();
        while let Some(sym) = iter.next().map_err(err)? {
            // The crate frames the records; these three layouts are decoded here (cvinfo.h
            // PUBSYM32, DATASYM32: kind, flags or type, offset, segment, name; UDTSYM: kind, type,
            // name), which costs a fraction of the crate's general parse on 60,000 records.
            let b = sym.raw_bytes();
            let u32_at = |at: usize| {
                b.get(at..at + 4)
                    .map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
            };
            let name_at = |at: usize| {
                b.get(at..)
                    .map(|n| &n[..n.iter().position(|&c| c == 0).unwrap_or(n.len())])
            };
            match sym.raw_kind() {
                S_PUB32 | S_GDATA32 | S_LDATA32 => {
                    let (Some(offset), Some(seg), Some(name)) =
                        (u32_at(6), b.get(10..12), name_at(12))
                    else {
                        continue;
                    };
                    let section = u16::from_le_bytes([seg[0], seg[1]]);
                    let at = ::pdb::PdbInternalSectionOffset { offset, section };
                    if let Some(rva) = at.to_rva(&map) {
                        rvas.push(name, rva.0);
                    }
                }
                S_UDT => {
                    if let (Some(ty), Some(name)) = (u32_at(2), name_at(6)) {
                        typedefs.push(name, ty);
                    }
                }
                _ => {}
            }
        }
        Ok(Symbols {
            rvas: rvas.finish(),
            typedefs: typedefs.finish(),
        })
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
