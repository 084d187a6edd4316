//! Everything that can go wrong while opening or reading a dump, as one typed enum whose messages
//! read as prose and say where the failure happened.

use std::path::PathBuf;

use crate::gxa::{Gpa, Gva};

/// A level of the x64 4-level page-table walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    Pml4e,
    Pdpte,
    Pde,
    Pte,
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Level::Pml4e => "PML4E",
            Level::Pdpte => "PDPTE",
            Level::Pde => "PDE",
            Level::Pte => "PTE",
        })
    }
}

/// Why a dump could not be opened or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened, measured or memory-mapped.
    #[error("cannot open {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file ends before a structure that must be there.
    #[error("the file is {len} bytes long, too short for the {what} which needs {need} bytes: the dump is truncated")]
    Truncated {
        what: &'static str,
        need: u64,
        len: u64,
    },
    /// The first eight bytes are not `PAGEDU64`.
    #[error(
        "not a 64-bit Windows kernel dump: the file starts with {found:?}, expected \"PAGEDU64\""
    )]
    NotADump { found: String },
    /// A 32-bit kernel dump (`PAGEDUMP`, 0x1000-byte header).
    #[error("this is a 32-bit Windows kernel dump (\"PAGEDUMP\"); only 64-bit (\"PAGEDU64\") dumps are supported")]
    Dump32,
    /// A user-mode minidump (`MDMP`).
    #[error("this is a user-mode minidump (\"MDMP\"), not a kernel memory dump")]
    Minidump,
    /// The DumpType holds no physical memory this reader understands.
    #[error("dump type {value} ({name}) is not supported: {why}")]
    UnsupportedDumpType {
        value: u32,
        name: &'static str,
        why: &'static str,
    },
    /// DUMP_FILE_ATTRIBUTES.EncryptedDumpData is set (facts 1.6).
    #[error("the dump is encrypted (Attributes {attributes:#x} has EncryptedDumpData, bit 8); decrypt it first (e.g. with the Windows dump-decryption tool)")]
    Encrypted { attributes: u32 },
    /// The dump is not of an x64 machine.
    #[error("the dump is of machine type {machine:#06x} ({name}); only x64 (0x8664) is supported")]
    Machine { machine: u32, name: &'static str },
    /// A structure is present but inconsistent.
    #[error("corrupt dump: {0}")]
    Corrupt(String),
    /// A physical page is not part of the dump.
    #[error("physical page {} (for address {gpa}) is not in the dump", gpa.page_align())]
    PageNotInDump { gpa: Gpa },
    /// A physical page is listed in the dump but its bytes lie past the end of the (truncated) file.
    #[error("physical page {} is listed in the dump at file offset {offset:#x}, but the file ends at {file_len:#x} (truncated dump)", gpa.page_align())]
    PageBeyondEof {
        gpa: Gpa,
        offset: u64,
        file_len: u64,
    },
    /// A physical read would run past the 64-bit address space.
    #[error("physical read of {len} bytes at {gpa} wraps around the address space")]
    PhysOverflow { gpa: Gpa, len: usize },
    /// The virtual address is not canonical (bits 63:47 differ).
    #[error("virtual address {gva} is not canonical")]
    NonCanonical { gva: Gva },
    /// The walk met an entry whose present bit is clear (and that was not an accepted transition PTE).
    #[error("virtual address {gva} is not mapped: the {level} {entry:#018x} is not present")]
    NotPresent { gva: Gva, level: Level, entry: u64 },
    /// The table that holds the next entry is not in the dump.
    #[error("cannot translate {gva}: the page table holding its {level} (physical {table}) is not in the dump")]
    TableNotInDump { gva: Gva, level: Level, table: Gpa },
    /// Translation succeeded but the data frame is not in the dump.
    #[error("virtual address {gva} maps to physical {gpa}, which is not in the dump")]
    FrameNotInDump { gva: Gva, gpa: Gpa },
    /// A virtual read stopped before its end; `source` says why at `at`.
    #[error("read of {len} bytes at {start} stopped after {done} bytes at {at}: {source}")]
    PartialRead {
        start: Gva,
        len: usize,
        done: usize,
        at: Gva,
        #[source]
        source: Box<Error>,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
