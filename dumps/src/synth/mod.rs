//! Low-level writer of synthetic 64-bit kernel dumps: sparse guest-physical memory, x64 page
//! tables and a dump-file writer for every DumpType the reader supports.
//!
//! The scenario builder (`portleak-synth`) lays out a fake Windows on top of this; the reader's
//! tests use it directly. What it writes follows the facts doc ("What a fixture must contain"):
//! "PAGE" fill, equal MxCsr copies, correct RequiredDumpSpace, page-aligned RDMP metadata.

mod write;

pub use crate::pxe::PageSize;
pub use write::{write_dump, DumpSpec};

use std::collections::BTreeMap;

use crate::gxa::{Gpa, Gva, Pfn, PAGE_SIZE};
use crate::pxe::{self, Pxe};

/// The dump varieties the writer produces (the reader's [`crate::DumpType`]).
pub type DumpKind = crate::header::DumpType;

/// Why a synthetic mapping or virtual access failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SynthError {
    #[error("virtual address {0} is not canonical")]
    NonCanonical(Gva),
    #[error("{what} {addr:#x} is not aligned to the {size:?} page size")]
    Misaligned {
        what: &'static str,
        addr: u64,
        size: PageSize,
    },
    #[error("cannot map {va}: a large page already covers it at the {level}")]
    LargePageInTheWay { va: Gva, level: crate::Level },
    #[error("virtual address {0} is already mapped")]
    AlreadyMapped(Gva),
    #[error("virtual address {0} is not mapped")]
    Unmapped(Gva),
}

/// Sparse guest-physical memory: frames exist once allocated or written; the rest reads as zeros.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    frames: BTreeMap<u64, Box<[u8; 4096]>>,
    next_alloc: u64,
}

/// First frame the allocator hands out: the low megabyte is firmware's on real machines, and
/// keeping PFN 0 out of use avoids the peers' PFN-0 range bug (facts 1.5).
const FIRST_ALLOC_PFN: u64 = 0x100;

impl Memory {
    /// Empty memory.
    pub fn new() -> Self {
        Self {
            frames: BTreeMap::new(),
            next_alloc: FIRST_ALLOC_PFN,
        }
    }

    /// Materialises `count` contiguous zeroed frames above every frame that exists so far and
    /// returns the address of the first. Never returns PFN 0. `count == 0` returns the next free
    /// address without allocating.
    pub fn alloc_pages(&mut self, count: u64) -> Gpa {
        let above_used = self.frames.keys().next_back().map_or(0, |&p| p + 1);
        let first = self.next_alloc.max(above_used).max(1);
        for pfn in first..first + count {
            self.frames.insert(pfn, Box::new([0; 4096]));
        }
        self.next_alloc = first + count;
        Pfn(first).gpa()
    }

    /// Writes `bytes` at `gpa`, materialising (zeroed) frames as needed; any alignment and length.
    pub fn write(&mut self, gpa: Gpa, bytes: &[u8]) {
        let mut addr = gpa.u64();
        let mut rest = bytes;
        while !rest.is_empty() {
            let off = (addr % PAGE_SIZE) as usize;
            let n = rest.len().min(4096 - off);
            let frame = self
                .frames
                .entry(addr / PAGE_SIZE)
                .or_insert_with(|| Box::new([0; 4096]));
            frame[off..off + n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            addr = addr.wrapping_add(n as u64);
        }
    }

    /// Reads into `buf`; bytes of frames that do not exist read as zero.
    pub fn read(&self, gpa: Gpa, buf: &mut [u8]) {
        let mut addr = gpa.u64();
        let mut done = 0;
        while done < buf.len() {
            let off = (addr % PAGE_SIZE) as usize;
            let n = (buf.len() - done).min(4096 - off);
            match self.frames.get(&(addr / PAGE_SIZE)) {
                Some(f) => buf[done..done + n].copy_from_slice(&f[off..off + n]),
                None => buf[done..done + n].fill(0),
            }
            done += n;
            addr = addr.wrapping_add(n as u64);
        }
    }

    /// Reads one little-endian u64 (zeros where no frame exists).
    pub fn read_u64(&self, gpa: Gpa) -> u64 {
        let mut b = [0u8; 8];
        self.read(gpa, &mut b);
        u64::from_le_bytes(b)
    }

    /// Every materialised frame, ascending by PFN.
    pub fn frames(&self) -> impl Iterator<Item = (Pfn, &[u8; 4096])> {
        self.frames.iter().map(|(&p, f)| (Pfn(p), &**f))
    }

    /// Frames in `range` (PFNs), ascending.
    pub fn frames_in(
        &self,
        range: std::ops::Range<u64>,
    ) -> impl Iterator<Item = (Pfn, &[u8; 4096])> {
        self.frames.range(range).map(|(&p, f)| (Pfn(p), &**f))
    }

    /// True when the frame exists.
    pub fn has_frame(&self, pfn: Pfn) -> bool {
        self.frames.contains_key(&pfn.0)
    }

    /// Number of materialised frames.
    pub fn frame_count(&self) -> usize {
        self.frames.len()
    }
}

/// Permission and caching bits of a leaf entry (intermediate entries are always present and
/// writable, user when the leaf is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PteFlags {
    pub writable: bool,
    pub user: bool,
    pub no_execute: bool,
    /// PAT bit: bit 7 in a 4 KiB PTE, bit 12 in a large-page entry (the case both kdmp-parsers get
    /// wrong, facts 3.1).
    pub pat: bool,
}

impl Default for PteFlags {
    /// Kernel read/write data: writable, supervisor, no-execute, no PAT.
    fn default() -> Self {
        Self {
            writable: true,
            user: false,
            no_execute: true,
            pat: false,
        }
    }
}

/// Index of the PML4 self-reference entry Windows used before randomising it (Win10 1607); the
/// entry maps the paging structures at 0xFFFFF6FB_7DBED000.
pub const SELF_REF_INDEX: u64 = 0x1ED;

/// x64 4-level page tables living in a [`Memory`].
#[derive(Debug, Clone)]
pub struct PageTables {
    /// Physical address of the PML4 (the DTB to put in the dump header).
    pub pml4: Gpa,
}

const TABLE_FLAGS: u64 = pxe::PRESENT | pxe::WRITABLE | pxe::ACCESSED;

impl PageTables {
    /// Allocates an empty PML4 with the self-reference entry at index 0x1ED, as Windows has it
    /// (fixtures-and-oracles "What a fixture must contain").
    pub fn new(mem: &mut Memory) -> Self {
        let pml4 = mem.alloc_pages(1);
        let self_ref = pml4.u64() | TABLE_FLAGS | pxe::DIRTY | pxe::NO_EXECUTE;
        mem.write(
            Gpa(pml4.u64() + 8 * SELF_REF_INDEX),
            &self_ref.to_le_bytes(),
        );
        Self { pml4 }
    }

    /// Maps `va` to `pa` with one page of `size`. Intermediate tables are allocated on demand.
    /// Fails on a non-canonical or misaligned address, when a large page covers the place a table
    /// is needed, or when the leaf is already present.
    pub fn map(
        &mut self,
        mem: &mut Memory,
        va: Gva,
        pa: Gpa,
        size: PageSize,
        flags: PteFlags,
    ) -> Result<(), SynthError> {
        if va.u64() % size.bytes() != 0 {
            return Err(SynthError::Misaligned {
                what: "virtual address",
                addr: va.u64(),
                size,
            });
        }
        if pa.u64() % size.bytes() != 0 {
            return Err(SynthError::Misaligned {
                what: "physical address",
                addr: pa.u64(),
                size,
            });
        }
        let level = match size {
            PageSize::G1 => 1,
            PageSize::M2 => 2,
            PageSize::K4 => 3,
        };
        let slot = self.slot(mem, va, level, flags.user)?;
        if Pxe(mem.read_u64(slot)).present() {
            return Err(SynthError::AlreadyMapped(va));
        }
        let mut e = pa.u64() | pxe::PRESENT | pxe::ACCESSED | pxe::DIRTY;
        e |= if flags.writable { pxe::WRITABLE } else { 0 };
        e |= if flags.user { pxe::USER } else { 0 };
        e |= if flags.no_execute { pxe::NO_EXECUTE } else { 0 };
        if size != PageSize::K4 {
            e |= pxe::LARGE;
        }
        if flags.pat {
            e |= if size == PageSize::K4 {
                pxe::PAT_4K
            } else {
                pxe::PAT_LARGE
            };
        }
        mem.write(slot, &e.to_le_bytes());
        Ok(())
    }

    /// Maps every 4 KiB page overlapping `[va, va+len)` to freshly allocated zeroed frames
    /// (contiguous), with default kernel-data flags (user flag for user-half addresses).
    pub fn map_new(&mut self, mem: &mut Memory, va: Gva, len: u64) -> Result<(), SynthError> {
        if !va.is_canonical() {
            return Err(SynthError::NonCanonical(va));
        }
        let first = va.page_align().u64();
        let end = va
            .u64()
            .checked_add(len)
            .ok_or(SynthError::NonCanonical(va))?;
        let pages = (end - first).div_ceil(PAGE_SIZE);
        for i in 0..pages {
            let page = Gva(first + i * PAGE_SIZE);
            if self.translate(mem, page).is_some() {
                return Err(SynthError::AlreadyMapped(page));
            }
        }
        let base = mem.alloc_pages(pages);
        let flags = PteFlags {
            user: first < 0x8000_0000_0000,
            ..PteFlags::default()
        };
        for i in 0..pages {
            self.map(
                mem,
                Gva(first + i * PAGE_SIZE),
                Gpa(base.u64() + i * PAGE_SIZE),
                PageSize::K4,
                flags,
            )?;
        }
        Ok(())
    }

    /// Writes through the mapping; fails (writing nothing) if any page is unmapped.
    pub fn write_virt(&self, mem: &mut Memory, va: Gva, bytes: &[u8]) -> Result<(), SynthError> {
        let chunks = self.chunks(mem, va, bytes.len())?;
        let mut done = 0;
        for (pa, n) in chunks {
            mem.write(pa, &bytes[done..done + n]);
            done += n;
        }
        Ok(())
    }

    /// Reads through the mapping; fails if any page is unmapped.
    pub fn read_virt(&self, mem: &Memory, va: Gva, buf: &mut [u8]) -> Result<(), SynthError> {
        let mut done = 0;
        for (pa, n) in self.chunks(mem, va, buf.len())? {
            mem.read(pa, &mut buf[done..done + n]);
            done += n;
        }
        Ok(())
    }

    /// Stores `raw` in the PTE of `va` (creating the tables down to the PT), whatever it means:
    /// transition, prototype or pagefile PTEs for reader tests.
    pub fn set_pte_raw(&mut self, mem: &mut Memory, va: Gva, raw: u64) -> Result<(), SynthError> {
        let slot = self.slot(mem, va.page_align(), 3, va.u64() < 0x8000_0000_0000)?;
        mem.write(slot, &raw.to_le_bytes());
        Ok(())
    }

    /// Hardware translation of `va` (present entries only), or `None`.
    pub fn translate(&self, mem: &Memory, va: Gva) -> Option<Gpa> {
        if !va.is_canonical() {
            return None;
        }
        let idx = [va.pml4e_idx(), va.pdpte_idx(), va.pde_idx(), va.pte_idx()];
        let mut table = self.pml4;
        for (level, &i) in idx.iter().enumerate() {
            let e = Pxe(mem.read_u64(Gpa(table.u64() + 8 * i)));
            if !e.present() {
                return None;
            }
            match level {
                1 if e.large() => return Some(Gpa(e.frame_1g().u64() | (va.u64() & 0x3FFF_FFFF))),
                2 if e.large() => return Some(Gpa(e.frame_2m().u64() | (va.u64() & 0x1F_FFFF))),
                3 => return Some(Gpa(e.frame().u64() | va.offset())),
                _ => table = e.frame(),
            }
        }
        None
    }

    /// Physical address of the entry for `va` at `level` (0 = PML4E .. 3 = PTE), creating tables.
    fn slot(
        &mut self,
        mem: &mut Memory,
        va: Gva,
        level: usize,
        user: bool,
    ) -> Result<Gpa, SynthError> {
        if !va.is_canonical() {
            return Err(SynthError::NonCanonical(va));
        }
        const LEVELS: [crate::Level; 4] = [
            crate::Level::Pml4e,
            crate::Level::Pdpte,
            crate::Level::Pde,
            crate::Level::Pte,
        ];
        let idx = [va.pml4e_idx(), va.pdpte_idx(), va.pde_idx(), va.pte_idx()];
        let mut table = self.pml4;
        for (l, &i) in idx.iter().enumerate().take(level) {
            let slot = Gpa(table.u64() + 8 * i);
            let e = Pxe(mem.read_u64(slot));
            if e.present() {
                if l > 0 && e.large() {
                    return Err(SynthError::LargePageInTheWay {
                        va,
                        level: LEVELS[l],
                    });
                }
                if user && !e.user() {
                    mem.write(slot, &(e.0 | pxe::USER).to_le_bytes());
                }
                table = e.frame();
            } else {
                let t = mem.alloc_pages(1);
                let entry = t.u64() | TABLE_FLAGS | if user { pxe::USER } else { 0 };
                mem.write(slot, &entry.to_le_bytes());
                table = t;
            }
        }
        Ok(Gpa(table.u64() + 8 * idx[level]))
    }

    /// Splits `[va, va+len)` into physically contiguous pieces, failing on the first unmapped page.
    fn chunks(&self, mem: &Memory, va: Gva, len: usize) -> Result<Vec<(Gpa, usize)>, SynthError> {
        let mut out = Vec::new();
        let mut addr = va.u64();
        let mut left = len;
        while left > 0 {
            let pa = self
                .translate(mem, Gva(addr))
                .ok_or(SynthError::Unmapped(Gva(addr)))?;
            let n = left.min((PAGE_SIZE - addr % PAGE_SIZE) as usize);
            out.push((pa, n));
            left -= n;
            addr = addr.wrapping_add(n as u64);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
