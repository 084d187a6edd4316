//! The kernel address space being built, before it becomes physical pages and a dump file.
//!
//! Everything is laid out in a sparse map of 4 KiB virtual pages; `dumps::synth` later gives each
//! page a physical frame and the page tables (see `image.rs`). Keeping the builder on this small
//! surface means the layout code never depends on how the dump writer stores memory.

use std::collections::BTreeMap;

use crate::Error;

pub const PAGE: u64 = 0x1000;

/// A sparse kernel virtual address space.
pub trait Space {
    /// Makes sure the pages covering `va..va+len` exist (zero-filled when new).
    fn map(&mut self, va: u64, len: u64);
    /// Writes `data` at `va`; every page touched must have been mapped.
    fn write(&mut self, va: u64, data: &[u8]) -> Result<(), Error>;
    /// Reads `buf.len()` bytes at `va`; fails on an unmapped page.
    fn read(&self, va: u64, buf: &mut [u8]) -> Result<(), Error>;
}

/// The in-memory [`Space`]: page-number -> page contents, ordered so handing the pages on is
/// deterministic.
#[derive(Debug, Default)]
pub struct Pages {
    pages: BTreeMap<u64, Box<[u8; PAGE as usize]>>,
}

impl Pages {
    pub fn new() -> Pages {
        Pages::default()
    }

    /// Pages in ascending virtual order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &[u8; PAGE as usize])> {
        self.pages.iter().map(|(vpn, p)| (vpn * PAGE, &**p))
    }

    pub fn len(&self) -> usize {
        self.pages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    pub fn write_u64(&mut self, va: u64, v: u64) -> Result<(), Error> {
        self.write(va, &v.to_le_bytes())
    }
}

impl Space for Pages {
    fn map(&mut self, va: u64, len: u64) {
        let first = va / PAGE;
        let last = (va + len.max(1) - 1) / PAGE;
        for vpn in first..=last {
            self.pages
                .entry(vpn)
                .or_insert_with(|| Box::new([0; PAGE as usize]));
        }
    }

    fn write(&mut self, mut va: u64, mut data: &[u8]) -> Result<(), Error> {
        while !data.is_empty() {
            let off = (va % PAGE) as usize;
            let n = data.len().min(PAGE as usize - off);
            let page = self
                .pages
                .get_mut(&(va / PAGE))
                .ok_or(Error::Layout(format!(
                    "write of {} bytes at {va:#x} hits an unmapped page",
                    data.len()
                )))?;
            page[off..off + n].copy_from_slice(&data[..n]);
            va += n as u64;
            data = &data[n..];
        }
        Ok(())
    }

    fn read(&self, mut va: u64, buf: &mut [u8]) -> Result<(), Error> {
        let mut done = 0;
        while done < buf.len() {
            let off = (va % PAGE) as usize;
            let n = (buf.len() - done).min(PAGE as usize - off);
            let page = self
                .pages
                .get(&(va / PAGE))
                .ok_or(Error::Layout(format!("read at {va:#x}: unmapped page")))?;
            buf[done..done + n].copy_from_slice(&page[off..off + n]);
            va += n as u64;
            done += n;
        }
        Ok(())
    }
}

/// x64 POOL_HEADER size; the tag sits at object-0x0C (MEMORY-MODEL.md "Kernel").
pub const POOL_HEADER: u64 = 0x10;

/// A bump allocator imitating the nonpaged pool: small blocks (header + body <= 0xFF0 bytes)
/// never straddle a page, consecutive blocks chain through PreviousSize, the tail of a page is a
/// free block; big blocks are page-aligned with no header, as big-pool allocations are.
#[derive(Debug)]
pub struct Pool {
    next: u64,
    /// BlockSize (16-byte units) of the last block in the current page; 0 at a page start.
    prev_units: u8,
    /// Big-pool blocks (VA, bytes, tag) for nt!PoolBigPageTable.
    big: Vec<(u64, u64, [u8; 4])>,
}

impl Pool {
    pub fn new(base: u64) -> Pool {
        Pool {
            next: base,
            prev_units: 0,
            big: Vec::new(),
        }
    }

    /// Allocates a small pool object of `size` body bytes tagged `tag`; returns the body VA.
    /// Larger objects are placed as big-pool blocks (no header), as Windows does past a page.
    pub fn alloc(&mut self, sp: &mut Pages, tag: &[u8; 4], size: u64) -> Result<u64, Error> {
        let units = (POOL_HEADER + size).div_ceil(16);
        if units > 0xFF {
            return self.alloc_big(sp, tag, size);
        }
        let bytes = units * 16;
        if self.next % PAGE + bytes > PAGE {
            self.close_page(sp)?;
        }
        let hdr = self.next;
        sp.map(hdr, bytes);
        let mut h = [0u8; 16];
        h[0] = self.prev_units;
        h[2] = units as u8;
        // PoolType byte = NonPagedPool + 1: odd means nonpaged to volatility3's PoolHeader
        // checks, which netscan requires (tcpip-afd-facts.md 1.8).
        h[3] = 1;
        h[4..8].copy_from_slice(tag);
        sp.write(hdr, &h)?;
        self.prev_units = units as u8;
        self.next += bytes;
        if self.next % PAGE == 0 {
            self.prev_units = 0;
        }
        Ok(hdr + POOL_HEADER)
    }

    /// Fills the rest of the current page with a free block and moves to the next page.
    fn close_page(&mut self, sp: &mut Pages) -> Result<(), Error> {
        let rest = PAGE - self.next % PAGE;
        if rest != PAGE && rest >= 16 {
            sp.map(self.next, 16);
            let mut h = [0u8; 16];
            h[0] = self.prev_units;
            h[2] = (rest / 16) as u8;
            sp.write(self.next, &h)?;
        }
        self.next = self.next.next_multiple_of(PAGE);
        self.prev_units = 0;
        Ok(())
    }

    /// Allocates a page-aligned big-pool block of `size` bytes (zeroed); its tag goes to the
    /// big-page table rather than a header, as on Windows (facts 1.8, "Big-pool entry size").
    pub fn alloc_big(&mut self, sp: &mut Pages, tag: &[u8; 4], size: u64) -> Result<u64, Error> {
        if self.next % PAGE != 0 {
            self.close_page(sp)?;
        }
        let va = self.next;
        sp.map(va, size);
        self.next += size.next_multiple_of(PAGE);
        self.big.push((va, size, *tag));
        Ok(va)
    }

    /// Writes nt!PoolBigPageTable: a power-of-two array of _POOL_TRACKER_BIG_PAGES entries
    /// {Va +0, Key (tag) +8, Pattern/PoolType +0xC, NumberOfBytes +0x10} of `entry_size` bytes
    /// (0x18, or 0x20 from build 20348: facts 1.8). Free slots have Va bit 0 set, as Windows
    /// marks them. Returns (table VA, entry count).
    pub fn big_page_table(&mut self, sp: &mut Pages, entry_size: u64) -> Result<(u64, u64), Error> {
        let blocks = std::mem::take(&mut self.big);
        let count = (blocks.len() as u64 * 2).next_power_of_two().max(512);
        let table = self.alloc_big(sp, b"PoBg", count * entry_size)?;
        let mut buf = vec![0u8; (count * entry_size) as usize];
        for (i, e) in buf.chunks_mut(entry_size as usize).enumerate() {
            let (va, size, tag) = match blocks.get(i) {
                Some(&b) => b,
                None => (1, 0, [0; 4]),
            };
            e[0..8].copy_from_slice(&va.to_le_bytes());
            e[8..12].copy_from_slice(&tag);
            // PoolType NonPagedPool in bits 8..20 of the Pattern/PoolType word.
            e[12..16].copy_from_slice(&(1u32 << 8).to_le_bytes());
            e[16..24].copy_from_slice(&size.to_le_bytes());
        }
        sp.write(table, &buf)?;
        Ok((table, count))
    }
}

/// Little-endian field writer for one object under construction.
#[derive(Debug, Clone)]
pub struct Obj(pub Vec<u8>);

impl Obj {
    pub fn new(size: u64) -> Obj {
        Obj(vec![0; size as usize])
    }
    fn put(&mut self, off: u32, b: &[u8]) {
        let off = off as usize;
        if self.0.len() < off + b.len() {
            self.0.resize(off + b.len(), 0);
        }
        self.0[off..off + b.len()].copy_from_slice(b);
    }
    pub fn u16(&mut self, off: u32, v: u16) -> &mut Obj {
        self.put(off, &v.to_le_bytes());
        self
    }
    pub fn be16(&mut self, off: u32, v: u16) -> &mut Obj {
        self.put(off, &v.to_be_bytes());
        self
    }
    pub fn u32(&mut self, off: u32, v: u32) -> &mut Obj {
        self.put(off, &v.to_le_bytes());
        self
    }
    pub fn u64(&mut self, off: u32, v: u64) -> &mut Obj {
        self.put(off, &v.to_le_bytes());
        self
    }
    pub fn bytes(&mut self, off: u32, b: &[u8]) -> &mut Obj {
        self.put(off, b);
        self
    }
    pub fn store(&self, sp: &mut Pages, va: u64) -> Result<(), Error> {
        sp.write(va, &self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_blocks_carry_headers_and_never_straddle_a_page() {
        let mut sp = Pages::new();
        let mut pool = Pool::new(0xFFFF_A000_0000_0000);
        let mut prev_units = 0u8;
        let mut last_page = 0;
        for i in 0..200u64 {
            let size = 0x30 + (i * 0x58) % 0x400;
            let body = pool.alloc(&mut sp, b"Test", size).unwrap();
            assert_eq!(body % 16, 0);
            let mut h = [0u8; 16];
            sp.read(body - POOL_HEADER, &mut h).unwrap();
            assert_eq!(&h[4..8], b"Test", "tag at object-0x0C");
            assert_eq!(
                u64::from(h[2]) * 16,
                (size + POOL_HEADER).next_multiple_of(16)
            );
            assert_eq!(
                (body - POOL_HEADER) / PAGE,
                (body + size - 1) / PAGE,
                "block {i} straddles a page"
            );
            if (body - POOL_HEADER) / PAGE == last_page {
                assert_eq!(h[0], prev_units, "PreviousSize chains blocks in a page");
            }
            prev_units = h[2];
            last_page = (body - POOL_HEADER) / PAGE;
        }
        let big = pool.alloc_big(&mut sp, b"InPP", 0x2BC0).unwrap();
        assert_eq!(big % PAGE, 0);
    }
}
