//! Physical reads of any length and alignment.

use crate::dump::Dump;
use crate::error::{Error, Result};
use crate::gxa::{Gpa, Pfn, PAGE_SIZE};

impl Dump {
    /// Fills `buf` from guest-physical `gpa`, crossing pages as needed. Fails on the first page
    /// that is not in the dump, naming it. Each chunk's length comes from the *current* address,
    /// not the start (kdmp-parser-rs gets this wrong for unaligned reads over three or more
    /// pages, facts 4.2).
    pub fn read_phys(&self, gpa: Gpa, buf: &mut [u8]) -> Result<()> {
        let mut addr = gpa.u64();
        if addr.checked_add(buf.len() as u64).is_none() {
            return Err(Error::PhysOverflow {
                gpa,
                len: buf.len(),
            });
        }
        let mut done = 0;
        while done < buf.len() {
            let off = (addr % PAGE_SIZE) as usize;
            let n = (buf.len() - done).min(PAGE_SIZE as usize - off);
            let page = self
                .page(Gpa(addr).pfn())
                .map_err(|e| with_gpa(e, Gpa(addr)))?;
            buf[done..done + n].copy_from_slice(&page[off..off + n]);
            done += n;
            addr += n as u64;
        }
        Ok(())
    }

    /// Like [`Dump::read_phys`] but pages that are not in the dump (or past EOF) read as zeros;
    /// returns the frames that were zero-filled, so the caller knows what was invented.
    pub fn read_phys_zero_fill(&self, gpa: Gpa, buf: &mut [u8]) -> Result<Vec<Pfn>> {
        let mut addr = gpa.u64();
        if addr.checked_add(buf.len() as u64).is_none() {
            return Err(Error::PhysOverflow {
                gpa,
                len: buf.len(),
            });
        }
        let mut missing = Vec::new();
        let mut done = 0;
        while done < buf.len() {
            let off = (addr % PAGE_SIZE) as usize;
            let n = (buf.len() - done).min(PAGE_SIZE as usize - off);
            match self.page(Gpa(addr).pfn()) {
                Ok(page) => buf[done..done + n].copy_from_slice(&page[off..off + n]),
                Err(_) => {
                    buf[done..done + n].fill(0);
                    missing.push(Gpa(addr).pfn());
                }
            }
            done += n;
            addr += n as u64;
        }
        Ok(missing)
    }

    /// Reads a little-endian u64 at `gpa`.
    pub fn read_phys_u64(&self, gpa: Gpa) -> Result<u64> {
        let mut b = [0u8; 8];
        self.read_phys(gpa, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
}

/// Page errors carry the page address; report the exact address the read reached instead.
fn with_gpa(e: Error, gpa: Gpa) -> Error {
    match e {
        Error::PageNotInDump { .. } => Error::PageNotInDump { gpa },
        Error::PageBeyondEof {
            offset, file_len, ..
        } => Error::PageBeyondEof {
            gpa,
            offset,
            file_len,
        },
        e => e,
    }
}
