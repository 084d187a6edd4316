//! x64 paging-structure entries (PML4E, PDPTE, PDE, PTE) and the Windows software PTE states the
//! reader understands (facts 3.1, 3.2).

use crate::gxa::Gpa;

/// Bits 51:12: the frame address in a table entry and in CR3 (facts 3.1: rekall and elf2dmp mask
/// 0x000F_FFFF_FFFF_F000; kdmp-parser-rs keeps only bits 47:12).
pub const PFN_MASK: u64 = 0x000F_FFFF_FFFF_F000;
/// Frame of a transition PTE: bits 44:12 only, because newer Windows keeps flags in the high PFN
/// bits of transition PTEs (facts 3.2, libvmi PR #1054).
pub const TRANSITION_PFN_MASK: u64 = 0x0000_1FFF_FFFF_F000;

pub const PRESENT: u64 = 1 << 0;
pub const WRITABLE: u64 = 1 << 1;
pub const USER: u64 = 1 << 2;
pub const ACCESSED: u64 = 1 << 5;
pub const DIRTY: u64 = 1 << 6;
/// PS in a PDPTE/PDE; PAT in a PTE.
pub const LARGE: u64 = 1 << 7;
/// PAT in a 4 KiB PTE.
pub const PAT_4K: u64 = 1 << 7;
/// PAT in a 2 MiB / 1 GiB entry; must be masked out of the frame (facts 3.1).
pub const PAT_LARGE: u64 = 1 << 12;
/// Windows software bit: prototype PTE (valid bit clear).
pub const PROTOTYPE: u64 = 1 << 10;
/// Windows software bit: transition PTE (valid bit clear).
pub const TRANSITION: u64 = 1 << 11;
pub const NO_EXECUTE: u64 = 1 << 63;

/// Size of a page mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PageSize {
    K4,
    M2,
    G1,
}

impl PageSize {
    /// Bytes covered by one page of this size.
    pub const fn bytes(self) -> u64 {
        match self {
            PageSize::K4 => 0x1000,
            PageSize::M2 => 0x20_0000,
            PageSize::G1 => 0x4000_0000,
        }
    }
}

/// One 8-byte paging-structure entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Pxe(pub u64);

impl Pxe {
    pub const fn present(self) -> bool {
        self.0 & PRESENT != 0
    }
    pub const fn writable(self) -> bool {
        self.0 & WRITABLE != 0
    }
    pub const fn user(self) -> bool {
        self.0 & USER != 0
    }
    pub const fn no_execute(self) -> bool {
        self.0 & NO_EXECUTE != 0
    }
    /// PS bit; meaningful only in a present PDPTE or PDE (vol3 PR #518: in a non-present PDE bit 7
    /// belongs to the software protection field).
    pub const fn large(self) -> bool {
        self.0 & LARGE != 0
    }
    /// Windows transition PTE: valid clear, Transition (bit 11) set, Prototype (bit 10) clear
    /// (facts 3.2; kdmp-parser-rs forgets the prototype check).
    pub const fn transition(self) -> bool {
        self.0 & (PRESENT | TRANSITION | PROTOTYPE) == TRANSITION
    }
    /// The next table or 4 KiB frame (bits 51:12).
    pub const fn frame(self) -> Gpa {
        Gpa(self.0 & PFN_MASK)
    }
    /// Frame of a 2 MiB page: bits 51:21 (PAT bit 12 masked out).
    pub const fn frame_2m(self) -> Gpa {
        Gpa(self.0 & PFN_MASK & !0x1F_FFFF)
    }
    /// Frame of a 1 GiB page: bits 51:30 (PAT bit 12 masked out).
    pub const fn frame_1g(self) -> Gpa {
        Gpa(self.0 & PFN_MASK & !0x3FFF_FFFF)
    }
    /// Frame of a transition PTE (bits 44:12).
    pub const fn transition_frame(self) -> Gpa {
        Gpa(self.0 & TRANSITION_PFN_MASK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_mask_pat_and_flags() {
        // 2 MiB page at 0x200000 with PAT: bit 12 must not leak into the frame (facts 3.1).
        let pde = Pxe(0x20_0000 | PAT_LARGE | LARGE | PRESENT);
        assert_eq!(pde.frame_2m(), Gpa(0x20_0000));
        let pdpte = Pxe(0x4000_0000 | PAT_LARGE | LARGE | PRESENT | NO_EXECUTE);
        assert_eq!(pdpte.frame_1g(), Gpa(0x4000_0000));
        assert!(pdpte.no_execute());
        // Transition PTE with a flag in bit 45 (facts 3.2 fixture): the frame keeps bits 44:12.
        let t = Pxe((1 << 45) | 0x7000 | TRANSITION);
        assert!(t.transition());
        assert_eq!(t.transition_frame(), Gpa(0x7000));
        assert!(!Pxe(0x7000 | TRANSITION | PROTOTYPE).transition());
        assert!(!Pxe(0x7000 | TRANSITION | PRESENT).transition());
    }
}
