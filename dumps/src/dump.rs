//! [`Dump`]: an opened kernel dump — the mapped file, its header, its page index and the
//! warnings found while opening it.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

#[cfg(unix)]
use memmap2::Advice;
use memmap2::Mmap;

use crate::error::{Error, Result};
use crate::gxa::{Gpa, Pfn, PAGE_SIZE};
use crate::header::{Header, HEADER_SIZE};
use crate::index::Index;
use crate::layout::{self, Layout};

enum Backing {
    Map(Mmap),
    Owned(Vec<u8>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Map(m) => m,
            Backing::Owned(v) => v,
        }
    }
}

/// An opened 64-bit Windows kernel dump. Immutable after opening, `Send + Sync`: share it by
/// reference (or `Arc`) across threads.
pub struct Dump {
    backing: Backing,
    path: Option<PathBuf>,
    header: Header,
    layout: Layout,
    index: Index,
    warnings: Vec<String>,
}

impl std::fmt::Debug for Dump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dump")
            .field("path", &self.path)
            .field("dump_type", &self.header.dump_type)
            .field("pages", &self.index.page_count())
            .field("warnings", &self.warnings.len())
            .finish()
    }
}

impl Dump {
    /// Memory-maps and parses the dump at `path`. The mapping is advised for random access: with
    /// the default read-ahead, random page reads of a 64 GiB dump collapse to hundreds per second
    /// (facts, "Measured here"). Files of any size are mapped (no 4 GiB limit).
    ///
    /// A dump whose page data is cut short still opens: [`Dump::warnings`] says so and reads of
    /// the missing pages fail with [`Error::PageBeyondEof`]. A cut header, bitmap or range list
    /// fails with [`Error::Truncated`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let backing = if len < HEADER_SIZE {
            // Too short to be a dump; read it so the header parser can say what it is (and because
            // mapping an empty file fails).
            let mut v = Vec::new();
            file.read_to_end(&mut v).map_err(io)?;
            Backing::Owned(v)
        } else {
            // SAFETY: the mapping is read-only and private to this `Dump`. Like every mmap-based
            // reader, we assume nobody truncates or rewrites the dump while it is open (a truncation
            // would raise SIGBUS on access).
            let map = unsafe { Mmap::map(&file) }.map_err(io)?;
            // Advice is a hint; failing to give it only costs speed. madvise is Unix-only; the
            // extension DLL reads through the debugger, not a mapping.
            #[cfg(unix)]
            let _ = map.advise(Advice::Random);
            Backing::Map(map)
        };
        let mut dump = Self::from_backing(backing)?;
        dump.path = Some(path.to_owned());
        Ok(dump)
    }

    /// Parses a dump held in memory (tests, fuzzing, dumps extracted from archives).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        Self::from_backing(Backing::Owned(bytes))
    }

    fn from_backing(backing: Backing) -> Result<Self> {
        let file = backing.bytes();
        let header = Header::parse(file)?;
        let mut warnings = Vec::new();
        let (index, layout) = layout::build(file, &header, &mut warnings)?;
        Ok(Self {
            backing,
            path: None,
            header,
            layout,
            index,
            warnings,
        })
    }

    /// The parsed DUMP_HEADER64.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// How pages are laid out in the file.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Problems found while opening that do not prevent reading (truncation, inconsistent counts).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The path given to [`Dump::open`].
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Size of the file in bytes.
    pub fn file_len(&self) -> u64 {
        self.backing.bytes().len() as u64
    }

    /// The header DTB without PCID and high bits (CR3 bits 51:12).
    pub fn dtb(&self) -> Gpa {
        self.header.dtb()
    }

    /// Number of physical pages the dump declares present (some may lie past EOF if truncated).
    pub fn page_count(&self) -> u64 {
        self.index.page_count()
    }

    /// The runs (type 1) or PFN ranges (types 8/9/10) sorted by PFN, each with its slot (page
    /// number from the first stored page); empty for bitmap dumps.
    pub fn runs(&self) -> &[crate::index::Run] {
        match &self.index {
            Index::Runs(r) => r,
            Index::Bitmap(_) => &[],
        }
    }

    /// Bytes of heap used by the page index.
    pub fn index_heap_bytes(&self) -> usize {
        self.index.heap_bytes()
    }

    /// True when the dump lists frame `pfn` (its bytes may still be past EOF in a truncated file).
    pub fn is_present(&self, pfn: Pfn) -> bool {
        self.index.slot(pfn).is_some()
    }

    /// Present frames, ascending.
    pub fn pfns(&self) -> impl Iterator<Item = Pfn> + Send + '_ {
        self.index.iter().map(|(p, _)| p)
    }

    /// File offset of the page of frame `pfn`, if the dump lists it.
    pub fn file_offset(&self, pfn: Pfn) -> Option<u64> {
        let slot = self.index.slot(pfn)?;
        slot.checked_mul(PAGE_SIZE)?
            .checked_add(self.layout.first_page_offset)
    }

    /// The 4096 bytes of frame `pfn`, borrowed from the mapping.
    #[inline]
    pub fn page(&self, pfn: Pfn) -> Result<&[u8; 4096]> {
        let gpa = pfn.gpa();
        let slot = self.index.slot(pfn).ok_or(Error::PageNotInDump { gpa })?;
        let file = self.backing.bytes();
        let file_len = file.len() as u64;
        // Listed but unreachable (offset overflow from a hostile FirstPage) reads like a page past EOF.
        let off = slot
            .checked_mul(PAGE_SIZE)
            .and_then(|o| o.checked_add(self.layout.first_page_offset));
        match off.and_then(|o| Some((o, o.checked_add(PAGE_SIZE)?))) {
            Some((off, end)) if end <= file_len => Ok(file[off as usize..end as usize]
                .try_into()
                .expect("4096 bytes")),
            _ => Err(Error::PageBeyondEof {
                gpa,
                offset: off.unwrap_or(u64::MAX),
                file_len,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dump_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<super::Dump>();
        check::<crate::virt::Reader<'static>>();
    }
}
