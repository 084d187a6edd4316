//! RTL_DYNAMIC_HASH_TABLE as tcpip builds them (tcpip-afd-facts.md 1.2 and 2.1; MEMORY-MODEL.md
//! "tcpip"): a 0x28-byte header, one bucket directory up to 128 buckets, a two-level directory
//! past that, entries chained through each bucket's circular LIST_ENTRY.

use crate::space::{Obj, Pages, Pool, Space};
use crate::Error;

pub const HEADER_SIZE: u64 = 0x28;

/// Bucket of `sig` in a linear-hashing table of `size` buckets, as the RTL computes it: mask with
/// the divisor, then with the doubled divisor below the pivot.
pub fn bucket(sig: u64, size: u32) -> u32 {
    let (mask, pivot) = mask_pivot(size);
    let b = (sig & u64::from(mask)) as u32;
    if b < pivot {
        (sig & (u64::from(mask) << 1 | 1)) as u32
    } else {
        b
    }
}

fn mask_pivot(size: u32) -> (u32, u32) {
    let pow = 1u32 << (31 - size.max(1).leading_zeros());
    (pow - 1, size - pow)
}

/// (first-level index, index inside that second-level directory) of bucket `b` (facts 2.1).
pub fn split(b: u32) -> (u32, u32) {
    let a = b + 128;
    let msb = 31 - a.leading_zeros();
    (msb - 7, a ^ (1 << msb))
}

/// One entry to link: its LIST_ENTRY's VA and hash signature (stored at link+0x10, as in
/// RTL_DYNAMIC_HASH_TABLE_ENTRY).
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub link: u64,
    pub sig: u64,
}

/// Writes the header at `header` and its directories, and links `entries` into their buckets.
pub fn write(
    sp: &mut Pages,
    pool: &mut Pool,
    header: u64,
    size: u32,
    entries: &[Entry],
) -> Result<(), Error> {
    let two_level = size > 128;
    // Bucket heads: VA of every bucket's LIST_ENTRY.
    let mut heads = Vec::with_capacity(size as usize);
    let directory;
    if !two_level {
        directory = pool.alloc(sp, b"HTab", u64::from(size) * 16)?;
        heads.extend((0..u64::from(size)).map(|b| directory + b * 16));
    } else {
        let dirs = split(size - 1).0 + 1;
        directory = pool.alloc(sp, b"HTab", 16 * 8)?;
        let mut seconds = Vec::new();
        for i in 0..dirs {
            let buckets = 128u64 << i;
            let dir = pool.alloc(sp, b"HTab", buckets * 16)?;
            init_heads(sp, dir, buckets)?;
            sp.write(directory + u64::from(i) * 8, &dir.to_le_bytes())?;
            seconds.push(dir);
        }
        for b in 0..size {
            let (f, s) = split(b);
            heads.push(seconds[f as usize] + u64::from(s) * 16);
        }
    }
    if !two_level {
        init_heads(sp, directory, u64::from(size))?;
    }
    let mut lists: Vec<Vec<Entry>> = vec![Vec::new(); size as usize];
    for e in entries {
        lists[bucket(e.sig, size) as usize].push(*e);
    }
    let mut non_empty = 0u32;
    for (head, list) in heads.iter().zip(&lists) {
        if list.is_empty() {
            continue;
        }
        non_empty += 1;
        let n = list.len();
        for (i, e) in list.iter().enumerate() {
            let flink = if i + 1 < n { list[i + 1].link } else { *head };
            let blink = if i == 0 { *head } else { list[i - 1].link };
            let mut le = [0u8; 24];
            le[..8].copy_from_slice(&flink.to_le_bytes());
            le[8..16].copy_from_slice(&blink.to_le_bytes());
            le[16..].copy_from_slice(&e.sig.to_le_bytes());
            sp.write(e.link, &le)?;
        }
        let mut h = [0u8; 16];
        h[..8].copy_from_slice(&list[0].link.to_le_bytes());
        h[8..].copy_from_slice(&list[n - 1].link.to_le_bytes());
        sp.write(*head, &h)?;
    }
    let (mask, pivot) = mask_pivot(size);
    let mut o = Obj::new(HEADER_SIZE);
    o.u32(0x04, 0)
        .u32(0x08, size)
        .u32(0x0C, pivot)
        .u32(0x10, mask)
        .u32(0x14, entries.len() as u32)
        .u32(0x18, non_empty)
        .u32(0x1C, 0)
        .u64(0x20, directory);
    o.store(sp, header)
}

fn init_heads(sp: &mut Pages, dir: u64, n: u64) -> Result<(), Error> {
    let mut buf = vec![0u8; (n * 16) as usize];
    for b in 0..n {
        let va = (dir + b * 16).to_le_bytes();
        let at = (b * 16) as usize;
        buf[at..at + 8].copy_from_slice(&va);
        buf[at + 8..at + 16].copy_from_slice(&va);
    }
    sp.write(dir, &buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_matches_facts_formula() {
        assert_eq!(split(0), (0, 0));
        assert_eq!(split(127), (0, 127));
        assert_eq!(split(128), (1, 0));
        assert_eq!(split(383), (1, 255));
        assert_eq!(split(384), (2, 0));
    }

    #[test]
    fn buckets_stay_inside_table() {
        for size in [1, 7, 128, 129, 300, 4096] {
            for sig in 0..5000u64 {
                assert!(bucket(sig.wrapping_mul(0x9E37_79B9), size) < size);
            }
        }
    }
}
