//! Module identity (PE/RSDS/version), symbol paths and stores, PDB types and publics, and the
//! built-in per-build layouts of tcpip.sys/afd.sys private structures.
//!
//! The pieces, in the order the offline target uses them:
//! - [`pe`]: [`ModuleIdentity`] of a loaded image read through an [`ImageReader`] (pages may be
//!   missing), or of a file on disk: timestamp, size, machine, the CodeView RSDS record naming the
//!   PDB ([`PdbId`]) and the file version from `VS_VERSION_INFO`.
//! - [`path`]: [`SymbolPath`], the `_NT_SYMBOL_PATH` / `--symbols` syntax, and the offline search of
//!   its local stores ([`SymbolPath::find_pdb`]); a PDB that is nowhere to be found becomes a
//!   [`MissingPdb`] that says what to fetch and how.
//! - [`pdb`]: [`Pdb`], type sizes, dotted field offsets, bitfields and public/global symbol RVAs
//!   read lazily from one PDB file.
//! - [`cache`]: [`SymbolCache`], one parsed [`Pdb`] per (GUID, age) shared by every dump of a
//!   triage run.
//! - [`layouts`]: built-in per-build layouts for what public PDBs do not carry (tcpip.sys and
//!   afd.sys private structures); see docs/LAYOUTS.md.
//!
//! Nothing here touches the network: symbol servers named in a symbol path are only quoted back to
//! the user in the instructions of a [`MissingPdb`].

pub mod cache;
pub mod layouts;
pub mod path;
pub mod pdb;
pub mod pe;
mod resource;
mod store;

pub use cache::{CacheStats, SymbolCache, SymbolError};
pub use path::{Lookup, MissingPdb, SymbolPath, SymbolPathElement};
pub use pdb::{Bitfield, FieldInfo, Pdb, PdbError, TypeDesc};
pub use pe::{FileImage, IdentityError, ImageReader, ModuleIdentity, PdbId};
