//! Where each present physical page lives in the file, without one heap entry per page
//! (facts 4.2): a sorted run table for types 1/8/9/10, a bitmap with a rank directory for 5/6.

use crate::gxa::Pfn;

/// A run of consecutive present frames stored consecutively in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub first: Pfn,
    pub count: u64,
    /// Index of the run's first page among all stored pages (0 = the page at the first-page
    /// offset).
    pub slot: u64,
}

/// A page index: maps a PFN to its slot (page number counted from the first stored page).
#[derive(Debug, Clone)]
pub(crate) enum Index {
    Runs(Vec<Run>),
    Bitmap(Bitmap),
}

impl Index {
    /// The slot of `pfn`, or `None` when the frame is not in the dump.
    #[inline]
    pub fn slot(&self, pfn: Pfn) -> Option<u64> {
        match self {
            Index::Runs(runs) => {
                // `runs` is sorted by first PFN and non-overlapping (checked when built).
                let i = runs
                    .partition_point(|r| r.first.0 <= pfn.0)
                    .checked_sub(1)?;
                let r = &runs[i];
                let k = pfn.0 - r.first.0;
                (k < r.count).then_some(r.slot + k)
            }
            Index::Bitmap(b) => b.rank_if_set(pfn.0),
        }
    }

    /// Number of present pages.
    pub fn page_count(&self) -> u64 {
        match self {
            Index::Runs(runs) => runs.iter().map(|r| r.count).sum(),
            Index::Bitmap(b) => b.ones,
        }
    }

    /// Present frames and their slots, ascending by PFN.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (Pfn, u64)> + Send + '_> {
        match self {
            Index::Runs(runs) => Box::new(
                runs.iter()
                    .flat_map(|r| (0..r.count).map(move |k| (Pfn(r.first.0 + k), r.slot + k))),
            ),
            Index::Bitmap(b) => Box::new(
                b.iter()
                    .enumerate()
                    .map(|(slot, pfn)| (Pfn(pfn), slot as u64)),
            ),
        }
    }

    /// Bytes of heap the index holds (for the benchmark and `info`).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Index::Runs(runs) => runs.capacity() * std::mem::size_of::<Run>(),
            Index::Bitmap(b) => b.words.capacity() * 8 + b.rank.capacity() * 8,
        }
    }
}

/// Words per rank block: one cumulative count per 512 bits (8 words); a lookup adds at most
/// 7 whole-word popcounts and one masked one.
const BLOCK_WORDS: usize = 8;

/// A presence bitmap (bit n set = PFN n present, LSB first, facts 1.4) with a rank directory.
#[derive(Debug, Clone)]
pub(crate) struct Bitmap {
    words: Vec<u64>,
    /// `rank[i]` = set bits in words `[0, 8i)`.
    rank: Vec<u64>,
    bits: u64,
    ones: u64,
}

impl Bitmap {
    /// Copies `bits` bits of `bytes` (LSB-first) and builds the rank directory. Bits past `bits`
    /// in the last byte are cleared; the PFNs *inside* a partial last byte stay present (the C++
    /// kdmp-parser drops them, facts 1.4). `bytes` must hold at least ⌈bits/8⌉ bytes.
    pub fn new(bytes: &[u8], bits: u64) -> Self {
        let nbytes = bits.div_ceil(8) as usize;
        let bytes = &bytes[..nbytes];
        let mut words: Vec<u64> = Vec::with_capacity(nbytes.div_ceil(8));
        let mut chunks = bytes.chunks_exact(8);
        words.extend(
            chunks
                .by_ref()
                .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))),
        );
        let rem = chunks.remainder();
        if !rem.is_empty() {
            let mut last = [0u8; 8];
            last[..rem.len()].copy_from_slice(rem);
            words.push(u64::from_le_bytes(last));
        }
        if bits % 64 != 0 {
            if let Some(w) = words.last_mut() {
                *w &= (1u64 << (bits % 64)) - 1;
            }
        }
        let mut rank = Vec::with_capacity(words.len().div_ceil(BLOCK_WORDS) + 1);
        let mut total = 0u64;
        for block in words.chunks(BLOCK_WORDS) {
            rank.push(total);
            total += block.iter().map(|w| u64::from(w.count_ones())).sum::<u64>();
        }
        Self {
            words,
            rank,
            bits,
            ones: total,
        }
    }

    /// Number of set bits.
    pub fn ones(&self) -> u64 {
        self.ones
    }

    /// Rank of bit `n` (set bits before it) when bit `n` is set.
    #[inline]
    pub fn rank_if_set(&self, n: u64) -> Option<u64> {
        if n >= self.bits {
            return None;
        }
        let w = (n / 64) as usize;
        let bit = 1u64 << (n % 64);
        let word = self.words[w];
        if word & bit == 0 {
            return None;
        }
        let block = w / BLOCK_WORDS;
        let mut r = self.rank[block];
        for x in &self.words[block * BLOCK_WORDS..w] {
            r += u64::from(x.count_ones());
        }
        Some(r + u64::from((word & (bit - 1)).count_ones()))
    }

    /// Set bits, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let t = w.trailing_zeros();
                w &= w - 1;
                Some(i as u64 * 64 + u64::from(t))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_rank(bytes: &[u8], n: u64) -> u64 {
        (0..n)
            .filter(|&i| bytes[(i / 8) as usize] & (1 << (i % 8)) != 0)
            .count() as u64
    }

    #[test]
    fn rank_matches_naive_count() {
        // Deterministic pseudo-random bitmap spanning several rank blocks, odd bit count.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let bytes: Vec<u8> = (0..700)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let bits = 700 * 8 - 3;
        let b = Bitmap::new(&bytes, bits);
        let mut seen = 0;
        for n in 0..bits {
            let set = bytes[(n / 8) as usize] & (1 << (n % 8)) != 0;
            assert_eq!(
                b.rank_if_set(n),
                set.then(|| naive_rank(&bytes, n)),
                "bit {n}"
            );
            seen += u64::from(set);
        }
        assert_eq!(b.ones(), seen);
        assert_eq!(b.rank_if_set(bits), None);
        assert_eq!(b.iter().count() as u64, seen);
    }

    #[test]
    fn partial_last_byte_keeps_its_pfns() {
        // 13 bits: PFNs 9 and 12 live in the partial second byte; bit 13-15 are junk (facts 1.4:
        // the C++ peer loses 9 and 12).
        let b = Bitmap::new(&[0b0000_0011, 0b1111_0010], 13);
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![0, 1, 9, 12]);
        assert_eq!(b.rank_if_set(12), Some(3));
        assert_eq!(b.rank_if_set(13), None);
    }

    #[test]
    fn run_lookup() {
        let idx = Index::Runs(vec![
            Run {
                first: Pfn(1),
                count: 2,
                slot: 0,
            },
            Run {
                first: Pfn(10),
                count: 3,
                slot: 2,
            },
        ]);
        let got: Vec<_> = (0..15).map(|p| idx.slot(Pfn(p))).collect();
        let want = [
            None,
            Some(0),
            Some(1),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            Some(2),
            Some(3),
            Some(4),
            None,
            None,
        ];
        assert_eq!(got, want);
        assert_eq!(idx.page_count(), 5);
        assert_eq!(
            idx.iter().map(|(p, _)| p.0).collect::<Vec<_>>(),
            vec![1, 2, 10, 11, 12]
        );
    }
}
