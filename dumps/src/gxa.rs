//! Address newtypes: guest-physical ([`Gpa`]), guest-virtual ([`Gva`]) and page-frame ([`Pfn`])
//! numbers, so a physical address can never be passed where a virtual one is expected.

use std::fmt;

/// Bytes in a page (x64 small page).
pub const PAGE_SIZE: u64 = 0x1000;
/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;

macro_rules! address {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub u64);

        impl $name {
            /// Wraps a raw address.
            pub const fn new(addr: u64) -> Self {
                Self(addr)
            }
            /// The raw address.
            pub const fn u64(self) -> u64 {
                self.0
            }
            /// Offset inside the 4 KiB page.
            pub const fn offset(self) -> u64 {
                self.0 & (PAGE_SIZE - 1)
            }
            /// The address rounded down to its 4 KiB page.
            pub const fn page_align(self) -> Self {
                Self(self.0 & !(PAGE_SIZE - 1))
            }
            /// True when the address is the first byte of a 4 KiB page.
            pub const fn page_aligned(self) -> bool {
                self.offset() == 0
            }
            /// `self + n`, or `None` on overflow.
            pub const fn checked_add(self, n: u64) -> Option<Self> {
                match self.0.checked_add(n) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:#x})"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }

        impl fmt::LowerHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::LowerHex::fmt(&self.0, f)
            }
        }

        impl From<u64> for $name {
            fn from(v: u64) -> Self {
                Self(v)
            }
        }

        impl From<$name> for u64 {
            fn from(v: $name) -> u64 {
                v.0
            }
        }
    };
}

address!(
    /// A guest-physical address.
    Gpa
);
address!(
    /// A guest-virtual address (x64, 48-bit canonical in practice).
    Gva
);

impl Gpa {
    /// The frame that holds this address.
    pub const fn pfn(self) -> Pfn {
        Pfn(self.0 >> PAGE_SHIFT)
    }
}

impl Gva {
    /// True when bits 63:47 are all equal (x64 4-level paging).
    pub const fn is_canonical(self) -> bool {
        let top = self.0 >> 47;
        top == 0 || top == 0x1_FFFF
    }
    /// Index into the PML4 (bits 47:39).
    pub const fn pml4e_idx(self) -> u64 {
        (self.0 >> 39) & 0x1FF
    }
    /// Index into the PDPT (bits 38:30).
    pub const fn pdpte_idx(self) -> u64 {
        (self.0 >> 30) & 0x1FF
    }
    /// Index into the page directory (bits 29:21).
    pub const fn pde_idx(self) -> u64 {
        (self.0 >> 21) & 0x1FF
    }
    /// Index into the page table (bits 20:12).
    pub const fn pte_idx(self) -> u64 {
        (self.0 >> 12) & 0x1FF
    }
}

/// A page-frame number: a physical address divided by 4096.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pfn(pub u64);

impl Pfn {
    /// Wraps a raw frame number.
    pub const fn new(pfn: u64) -> Self {
        Self(pfn)
    }
    /// The raw frame number.
    pub const fn u64(self) -> u64 {
        self.0
    }
    /// Address of the first byte of the frame (frame numbers above 2^52 wrap; x64 caps
    /// physical addresses at 52 bits).
    pub const fn gpa(self) -> Gpa {
        Gpa(self.0.wrapping_shl(PAGE_SHIFT))
    }
}

impl fmt::Debug for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pfn({:#x})", self.0)
    }
}

impl fmt::Display for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_and_pages() {
        let va = Gva::new(0xFFFF_F780_0000_0123);
        assert!(va.is_canonical());
        assert_eq!(va.pml4e_idx(), 0x1EF);
        assert_eq!(va.pdpte_idx(), 0);
        assert_eq!(va.offset(), 0x123);
        assert!(!Gva::new(0x0000_8000_0000_0000).is_canonical());
        assert_eq!(Gpa::new(0x5123).pfn(), Pfn(5));
        assert_eq!(Pfn(5).gpa(), Gpa(0x5000));
        assert_eq!(format!("{:?}", Gpa(0x10)), "Gpa(0x10)");
        assert_eq!(Gpa(u64::MAX).checked_add(1), None);
    }
}
