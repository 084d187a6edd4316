//! x64 virtual-to-physical translation (facts 3.1-3.3) and virtual reads through a DTB with a
//! small lock-free translation cache.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::dump::Dump;
use crate::error::{Error, Level, Result};
use crate::gxa::{Gpa, Gva, PAGE_SIZE};
use crate::pxe::{PageSize, Pxe, PFN_MASK};

/// The result of a page-table walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Translation {
    /// The physical address `gva` maps to.
    pub gpa: Gpa,
    pub size: PageSize,
    /// R/W set at every level.
    pub writable: bool,
    /// U/S set at every level.
    pub user: bool,
    /// NX clear at every level.
    pub executable: bool,
    /// The PTE was a Windows transition PTE (only with [`Reader::transitions`]).
    pub transition: bool,
    /// The frame holding `gpa` is in the dump. A walk through valid entries may still land on a
    /// frame the dump left out (common in kernel and active dumps, facts 3.2).
    pub in_dump: bool,
}

const LEVELS: [Level; 4] = [Level::Pml4e, Level::Pdpte, Level::Pde, Level::Pte];

impl Dump {
    /// Walks the page tables at `dtb` (CR3; PCID bits 11:0 and bits 63:52 are ignored) for
    /// `gva` with hardware rules only: entries with the present bit clear end the walk.
    pub fn translate(&self, dtb: Gpa, gva: Gva) -> Result<Translation> {
        self.walk(dtb, gva, false)
    }

    pub(crate) fn walk(&self, dtb: Gpa, gva: Gva, transitions: bool) -> Result<Translation> {
        if !gva.is_canonical() {
            return Err(Error::NonCanonical { gva });
        }
        let idx = [
            gva.pml4e_idx(),
            gva.pdpte_idx(),
            gva.pde_idx(),
            gva.pte_idx(),
        ];
        let mut table = Gpa(dtb.u64() & PFN_MASK);
        let (mut writable, mut user, mut executable) = (true, true, true);
        for (l, &i) in idx.iter().enumerate() {
            let level = LEVELS[l];
            let page = self.page(table.pfn()).map_err(|e| match e {
                Error::PageNotInDump { .. } => Error::TableNotInDump { gva, level, table },
                e => e,
            })?;
            let at = 8 * i as usize;
            let e = Pxe(u64::from_le_bytes(
                page[at..at + 8].try_into().expect("8 bytes"),
            ));
            let (gpa, size, transition) = if e.present() {
                writable &= e.writable();
                user &= e.user();
                executable &= !e.no_execute();
                match l {
                    // PS in a PDPTE/PDE: large page; the PAT bit 12 is masked by frame_1g/2m
                    // (facts 3.1 — both kdmp-parsers leave it in and answer 4 KiB too high).
                    1 if e.large() => (
                        Gpa(e.frame_1g().u64() | (gva.u64() & 0x3FFF_FFFF)),
                        PageSize::G1,
                        false,
                    ),
                    2 if e.large() => (
                        Gpa(e.frame_2m().u64() | (gva.u64() & 0x1F_FFFF)),
                        PageSize::M2,
                        false,
                    ),
                    3 => (Gpa(e.frame().u64() | gva.offset()), PageSize::K4, false),
                    _ => {
                        table = e.frame();
                        continue;
                    }
                }
            } else if l == 3 && transitions && e.transition() {
                // Transition PTE: the page is still in RAM on the standby/modified list
                // (facts 3.2). Only at the PTE level, and only on request.
                writable &= e.writable();
                executable &= !e.no_execute();
                (
                    Gpa(e.transition_frame().u64() | gva.offset()),
                    PageSize::K4,
                    true,
                )
            } else {
                return Err(Error::NotPresent {
                    gva,
                    level,
                    entry: e.0,
                });
            };
            let in_dump = self.is_present(gpa.pfn());
            return Ok(Translation {
                gpa,
                size,
                writable,
                user,
                executable,
                transition,
                in_dump,
            });
        }
        unreachable!("the PTE level always returns")
    }
}

/// Entries in the translation cache (direct-mapped on the low bits of the virtual page number).
const TLB_ENTRIES: usize = 1024;
const TLB_BITS: u32 = TLB_ENTRIES.trailing_zeros();
const VALID: u64 = 1 << 63;
/// Cached frames must fit 36 bits (256 TiB of physical memory); higher frames are not cached.
const PFN_BITS: u32 = 36;

/// A translation cache that is safe to share: each entry is one `AtomicU64` packing the valid
/// bit, the tag (virtual page number >> 10, 26 bits for 48-bit addresses) and the frame, so a
/// concurrent reader can never see a torn entry. Entries never go stale: a dump does not change.
struct Tlb(Box<[AtomicU64]>);

impl Tlb {
    fn new() -> Self {
        Self((0..TLB_ENTRIES).map(|_| AtomicU64::new(0)).collect())
    }

    #[inline]
    fn get(&self, vpn: u64) -> Option<u64> {
        let e = self.0[(vpn as usize) & (TLB_ENTRIES - 1)].load(Ordering::Relaxed);
        let tag = vpn >> TLB_BITS;
        (e & VALID != 0 && (e & !VALID) >> PFN_BITS == tag).then_some(e & ((1 << PFN_BITS) - 1))
    }

    #[inline]
    fn put(&self, vpn: u64, pfn: u64) {
        if pfn < (1 << PFN_BITS) {
            let e = VALID | ((vpn >> TLB_BITS) << PFN_BITS) | pfn;
            self.0[(vpn as usize) & (TLB_ENTRIES - 1)].store(e, Ordering::Relaxed);
        }
    }
}

/// Reads virtual memory of one address space (one DTB). `Send + Sync`; cheap to create (an 8 KiB
/// cache), so give each thread or each process its own.
pub struct Reader<'d> {
    dump: &'d Dump,
    dtb: Gpa,
    transitions: bool,
    tlb: Option<Tlb>,
}

impl<'d> Reader<'d> {
    /// A reader over the header's DTB (the kernel address space at crash time).
    pub fn new(dump: &'d Dump) -> Self {
        Self::with_dtb(dump, dump.dtb())
    }

    /// A reader over another address space, e.g. `EPROCESS.Pcb.DirectoryTableBase` (PCID bits
    /// are ignored).
    pub fn with_dtb(dump: &'d Dump, dtb: Gpa) -> Self {
        Self {
            dump,
            dtb: Gpa(dtb.u64() & PFN_MASK),
            transitions: false,
            tlb: Some(Tlb::new()),
        }
    }

    /// Also follow Windows transition PTEs (valid clear, bit 11 set, bit 10 clear; frame bits
    /// 44:12), whose pages are still in RAM (facts 3.2). Off by default: the hardware would fault.
    pub fn transitions(mut self, on: bool) -> Self {
        self.transitions = on;
        self
    }

    /// Turns the translation cache off (for measurements).
    pub fn without_cache(mut self) -> Self {
        self.tlb = None;
        self
    }

    /// The DTB this reader walks.
    pub fn dtb(&self) -> Gpa {
        self.dtb
    }

    /// The dump read.
    pub fn dump(&self) -> &'d Dump {
        self.dump
    }

    /// Full walk of `gva` (uncached), with permissions and whether the frame is in the dump.
    pub fn translate(&self, gva: Gva) -> Result<Translation> {
        self.dump.walk(self.dtb, gva, self.transitions)
    }

    /// The physical address of `gva` if its frame is in the dump.
    #[inline]
    pub fn gpa(&self, gva: Gva) -> Result<Gpa> {
        let vpn = (gva.u64() >> 12) & ((1 << 36) - 1);
        if let Some(pfn) = self.tlb.as_ref().and_then(|t| t.get(vpn)) {
            if gva.is_canonical() {
                return Ok(Gpa((pfn << 12) | gva.offset()));
            }
        }
        let t = self.translate(gva)?;
        if !t.in_dump {
            return Err(Error::FrameNotInDump { gva, gpa: t.gpa });
        }
        if let Some(tlb) = &self.tlb {
            tlb.put(vpn, t.gpa.pfn().0);
        }
        Ok(t.gpa)
    }

    /// Reads as much of `[gva, gva + buf.len())` as possible, stopping at the first byte that
    /// cannot be read (as `IDebugDataSpaces::ReadVirtual` does); returns the bytes read and, if
    /// short, why.
    pub fn read_best_effort(&self, gva: Gva, buf: &mut [u8]) -> (usize, Option<Error>) {
        let mut done = 0;
        while done < buf.len() {
            let Some(addr) = gva.checked_add(done as u64) else {
                return (done, Some(Error::NonCanonical { gva: Gva(u64::MAX) }));
            };
            let off = addr.offset() as usize;
            let n = (buf.len() - done).min(PAGE_SIZE as usize - off);
            let page = self.gpa(addr).and_then(|gpa| self.dump.page(gpa.pfn()));
            match page {
                Ok(page) => buf[done..done + n].copy_from_slice(&page[off..off + n]),
                Err(e) => return (done, Some(e)),
            }
            done += n;
        }
        (done, None)
    }

    /// Fills `buf` from `gva` or fails, saying where the read stopped and why.
    pub fn read_exact(&self, gva: Gva, buf: &mut [u8]) -> Result<()> {
        match self.read_best_effort(gva, buf) {
            (_, None) => Ok(()),
            (0, Some(e)) => Err(e),
            (done, Some(e)) => Err(Error::PartialRead {
                start: gva,
                len: buf.len(),
                done,
                at: Gva(gva.u64().wrapping_add(done as u64)),
                source: Box::new(e),
            }),
        }
    }

    /// Reads a little-endian u64.
    pub fn read_u64(&self, gva: Gva) -> Result<u64> {
        let mut b = [0u8; 8];
        self.read_exact(gva, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Reads a little-endian u32.
    pub fn read_u32(&self, gva: Gva) -> Result<u32> {
        let mut b = [0u8; 4];
        self.read_exact(gva, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
}
