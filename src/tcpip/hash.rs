//! The full walk of an RTL_DYNAMIC_HASH_TABLE, as ntoskrnl's Rtl*HashTable* routines lay it out.
//!
//! The peers read at most 128 buckets and the first entry of each (tcpip-afd-facts 1.2, 2.1); a busy
//! server's tables grow past 128 buckets into a two-level directory and hold thousands of entries
//! per table, so this walk reads every bucket of both directory levels and every entry of every
//! bucket. Layout (x64, 0x28 bytes): Flags +0, Shift +4, TableSize +8, Pivot +0xC, DivisorMask
//! +0x10, NumEntries +0x14, NonEmptyBuckets +0x18, NumEnumerators +0x1C, Directory +0x20
//! ([X] MPF, ntdiff). Bucket directory geometry from the debugger's hashtab.cpp as mirrored in
//! msquic's quictypes.h (MSQ): second-level directory i holds 128 * 2^i buckets.

use crate::diag::Diagnostics;
use crate::target::{Target, TargetExt};
use crate::walk::is_kernel_ptr;
use std::collections::HashSet;

/// Buckets in the first second-level directory; directory i holds `FIRST_LEVEL_BUCKETS << i`.
const FIRST_LEVEL_BUCKETS: u64 = 128;
/// Pointers in the first-level directory (so at most 128 * (2^16 - 1) buckets).
const MAX_FIRST_LEVEL: u64 = 16;
/// A hash table larger than this is taken as corrupt (tcpip's grow to a few hundred thousand).
const MAX_TABLE_SIZE: u32 = 1 << 22;
/// Extra entries tolerated beyond NumEntries before a bucket walk is cut (the count is updated
/// separately from the links and may lag in a dump taken while the table changes).
const SLACK: u64 = 4096;

/// The header fields the walk needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashHeader {
    pub table_size: u32,
    pub pivot: u32,
    pub divisor_mask: u32,
    pub num_entries: u32,
    pub non_empty_buckets: u32,
    pub directory: u64,
}

impl HashHeader {
    /// Reads and validates a header; the message says which check failed.
    pub fn read(target: &dyn Target, va: u64) -> Result<Self, String> {
        let mut b = [0u8; 0x28];
        target.read_exact(va, &mut b).map_err(|e| e.to_string())?;
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"));
        let h = Self {
            table_size: u32_at(0x8),
            pivot: u32_at(0xC),
            divisor_mask: u32_at(0x10),
            num_entries: u32_at(0x14),
            non_empty_buckets: u32_at(0x18),
            directory: u64::from_le_bytes(b[0x20..0x28].try_into().expect("8 bytes")),
        };
        if h.table_size == 0 || h.table_size > MAX_TABLE_SIZE {
            return Err(format!("TableSize {} out of range", h.table_size));
        }
        // Linear hashing: DivisorMask + 1 is the power of two the table is growing from and Pivot
        // the next bucket to split, so TableSize = DivisorMask + 1 + Pivot [I from MSQ].
        let base = u64::from(h.divisor_mask) + 1;
        if !base.is_power_of_two() || base + u64::from(h.pivot) != u64::from(h.table_size) {
            return Err(format!(
                "DivisorMask {:#x} / Pivot {} do not fit TableSize {}",
                h.divisor_mask, h.pivot, h.table_size
            ));
        }
        if !is_kernel_ptr(h.directory, 8) {
            return Err(format!(
                "Directory {:#x} is not a kernel pointer",
                h.directory
            ));
        }
        if h.non_empty_buckets > h.table_size {
            return Err(format!(
                "NonEmptyBuckets {} exceeds TableSize {}",
                h.non_empty_buckets, h.table_size
            ));
        }
        Ok(h)
    }

    /// Address of bucket `b`'s LIST_ENTRY head.
    pub fn bucket_head(&self, target: &dyn Target, b: u32) -> Result<u64, String> {
        if u64::from(self.table_size) <= FIRST_LEVEL_BUCKETS {
            return Ok(self.directory + 16 * u64::from(b));
        }
        let a = u64::from(b) + FIRST_LEVEL_BUCKETS;
        let msb = 63 - u64::from(a.leading_zeros());
        let first = msb - 7;
        let second = a ^ (1 << msb);
        if first >= MAX_FIRST_LEVEL {
            return Err(format!("bucket {b} is beyond the two-level directory"));
        }
        let dir = target
            .read_u64(self.directory + 8 * first)
            .map_err(|e| e.to_string())?;
        if !is_kernel_ptr(dir, 8) {
            return Err(format!(
                "second-level directory {first} pointer {dir:#x} is not a kernel pointer"
            ));
        }
        Ok(dir + 16 * second)
    }
}

/// Outcome of walking one table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HashWalk {
    /// Addresses of the entries' hash links (RTL_DYNAMIC_HASH_TABLE_ENTRY.Linkage).
    pub links: Vec<u64>,
    pub buckets_read: u32,
    pub buckets_unreadable: u32,
}

/// Walks every entry of every bucket of the table at `va`. Problems go to `diag` under `what`.
pub fn walk_table(
    target: &dyn Target,
    va: u64,
    what: &str,
    diag: &mut Diagnostics,
) -> Result<HashWalk, String> {
    let h = HashHeader::read(target, va)?;
    let mut out = HashWalk::default();
    let limit = u64::from(h.num_entries) + SLACK;
    let mut seen = HashSet::new();
    for b in 0..h.table_size {
        if target.interrupted() {
            diag.warn(
                "interrupted",
                format!("{what}: interrupted at bucket {b} of {}", h.table_size),
            );
            break;
        }
        let head = match h.bucket_head(target, b) {
            Ok(head) => head,
            Err(e) => {
                out.buckets_unreadable += 1;
                diag.warn("hash-bucket-unreadable", format!("{what} {va:#x}: {e}"));
                continue;
            }
        };
        let mut link = match target.read_u64(head) {
            Ok(l) => l,
            Err(e) => {
                out.buckets_unreadable += 1;
                diag.warn(
                    "hash-bucket-unreadable",
                    format!("{what} {va:#x} bucket {b}: {e}"),
                );
                continue;
            }
        };
        out.buckets_read += 1;
        while link != head {
            if !is_kernel_ptr(link, 8) {
                diag.warn(
                    "hash-bad-link",
                    format!("{what} {va:#x} bucket {b}: link {link:#x} is not a kernel pointer"),
                );
                break;
            }
            if !seen.insert(link) {
                diag.warn(
                    "hash-cycle",
                    format!("{what} {va:#x} bucket {b}: entry {link:#x} seen twice"),
                );
                break;
            }
            if out.links.len() as u64 >= limit {
                diag.warn(
                    "hash-too-long",
                    format!(
                        "{what} {va:#x}: more than NumEntries {} + {SLACK} entries",
                        h.num_entries
                    ),
                );
                return Ok(out);
            }
            out.links.push(link);
            link = match target.read_u64(link) {
                Ok(l) => l,
                Err(e) => {
                    diag.warn(
                        "hash-entry-unreadable",
                        format!("{what} {va:#x} bucket {b}: {e}"),
                    );
                    break;
                }
            };
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemTarget;

    const TABLE: u64 = 0xFFFF_A000_0000_0000;
    const DIR: u64 = 0xFFFF_A000_0010_0000;
    const ENTRIES: u64 = 0xFFFF_A000_1000_0000;

    /// Builds a table of `size` buckets (two-level past 128) with `per_bucket` entries in each.
    fn build(size: u32, per_bucket: u64) -> (MemTarget, Vec<u64>) {
        let mut t = MemTarget::new();
        let base = if size <= 128 {
            size
        } else {
            (size as u64).next_power_of_two() as u32 / 2
        };
        t.put_u32(TABLE + 0x8, size);
        t.put_u32(TABLE + 0xC, size - base);
        t.put_u32(TABLE + 0x10, base - 1);
        t.put_u32(TABLE + 0x14, (u64::from(size) * per_bucket) as u32);
        t.put_u32(TABLE + 0x18, size);
        t.put_u64(TABLE + 0x20, DIR);
        let mut heads = Vec::new();
        if size <= 128 {
            heads.extend((0..u64::from(size)).map(|b| DIR + 16 * b));
        } else {
            for b in 0..u64::from(size) {
                let a = b + 128;
                let msb = 63 - a.leading_zeros() as u64;
                let second_dir = DIR + 0x1_0000 * (msb - 7 + 1);
                t.put_u64(DIR + 8 * (msb - 7), second_dir);
                heads.push(second_dir + 16 * (a ^ (1 << msb)));
            }
        }
        let mut all = Vec::new();
        for (b, &head) in heads.iter().enumerate() {
            let mut prev = head;
            for k in 0..per_bucket {
                let e = ENTRIES + (b as u64 * per_bucket + k) * 0x40;
                t.put_u64(prev, e);
                t.put_u64(e + 8, prev);
                prev = e;
                all.push(e);
            }
            t.put_u64(prev, head);
            t.put_u64(head + 8, prev);
        }
        (t, all)
    }

    #[test]
    fn one_level_table_every_entry() {
        let (t, all) = build(128, 3);
        let mut d = Diagnostics::new();
        let w = walk_table(&t, TABLE, "test", &mut d).unwrap();
        assert_eq!(w.links, all);
        assert_eq!(w.buckets_read, 128);
        assert!(d.is_empty());
    }

    #[test]
    fn two_level_table_past_128_buckets() {
        // 384 buckets: DivisorMask 255, Pivot 128; directories 0 (128), 1 (256).
        let (t, all) = build(384, 2);
        let mut d = Diagnostics::new();
        let w = walk_table(&t, TABLE, "test", &mut d).unwrap();
        assert_eq!(w.links.len(), 768);
        assert_eq!(w.links, all);
        assert!(d.is_empty(), "{:?}", d.groups());
    }

    #[test]
    fn inconsistent_header_is_rejected() {
        let (mut t, _) = build(128, 1);
        t.put_u32(TABLE + 0x10, 100);
        let mut d = Diagnostics::new();
        assert!(walk_table(&t, TABLE, "test", &mut d)
            .unwrap_err()
            .contains("DivisorMask"));
    }

    #[test]
    fn cycle_in_a_bucket_is_cut() {
        let (mut t, all) = build(128, 3);
        // Second entry of bucket 0 points back at the first.
        t.put_u64(all[1], all[0]);
        let mut d = Diagnostics::new();
        let w = walk_table(&t, TABLE, "test", &mut d).unwrap();
        assert_eq!(d.count("hash-cycle"), 1);
        assert_eq!(w.links.len(), all.len() - 1);
    }

    #[test]
    fn missing_directory_page_costs_only_its_buckets() {
        let (mut t, _) = build(384, 1);
        t.unmap_page(DIR + 0x2_0000);
        let mut d = Diagnostics::new();
        let w = walk_table(&t, TABLE, "test", &mut d).unwrap();
        assert_eq!(w.buckets_unreadable, 256);
        assert_eq!(w.links.len(), 128);
    }
}
