//! A name → value index without one allocation per name.
//!
//! A kernel PDB has tens of thousands of publics and globals and thousands of named types; a
//! `HashMap<String, _>` of them cost about 400 ns per entry on the benchmark machine, most of it
//! allocating the keys. Here names are copied into one arena and entries are sorted by a 64-bit
//! FNV-1a hash; a lookup is a binary search plus a byte comparison.

/// Bytes of names the arena may hold (its offsets are `u32`; PDBs are at most 2 GiB anyway).
const MAX_ARENA: usize = u32::MAX as usize;

#[derive(Debug, Clone, Copy)]
struct Entry {
    hash: u64,
    start: u32,
    len: u32,
    value: u32,
}

/// Sorted, immutable index; where a name occurs twice the first value pushed wins.
#[derive(Debug, Default)]
pub(crate) struct NameIndex {
    arena: Vec<u8>,
    entries: Vec<Entry>,
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl NameIndex {
    /// Adds a name; call [`finish`](Self::finish) before looking anything up.
    pub fn push(&mut self, name: &[u8], value: u32) {
        if self.arena.len() + name.len() > MAX_ARENA {
            return;
        }
        let start = self.arena.len() as u32;
        self.arena.extend_from_slice(name);
        self.entries.push(Entry {
            hash: fnv1a(name),
            start,
            len: name.len() as u32,
            value,
        });
    }

    /// Sorts the entries; the sort is stable, so the first of equal names stays first.
    pub fn finish(mut self) -> NameIndex {
        self.entries.sort_by_key(|e| e.hash);
        self.arena.shrink_to_fit();
        self.entries.shrink_to_fit();
        self
    }

    pub fn get(&self, name: &str) -> Option<u32> {
        let h = fnv1a(name.as_bytes());
        let first = self.entries.partition_point(|e| e.hash < h);
        self.entries[first..]
            .iter()
            .take_while(|e| e.hash == h)
            .find(|e| &self.arena[e.start as usize..(e.start + e.len) as usize] == name.as_bytes())
            .map(|e| e.value)
    }

    /// The value of the first entry (in push order) whose name starts with `prefix`; a linear scan,
    /// meant for the rare fallback after [`get`](Self::get) missed.
    pub fn first_with_prefix(&self, prefix: &str) -> Option<u32> {
        self.entries
            .iter()
            .filter(|e| {
                self.arena[e.start as usize..(e.start + e.len) as usize]
                    .starts_with(prefix.as_bytes())
            })
            .min_by_key(|e| e.start)
            .map(|e| e.value)
    }

    /// Number of entries pushed (duplicates included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_value_wins_and_misses_are_none() {
        let mut ix = NameIndex::default();
        ix.push(b"PsActiveProcessHead", 0x3000);
        ix.push(b"KeMaximumIncrement", 0x3008);
        ix.push(b"PsActiveProcessHead", 0x9999);
        ix.push(b"", 7);
        let ix = ix.finish();
        assert_eq!(ix.get("PsActiveProcessHead"), Some(0x3000));
        assert_eq!(ix.get("KeMaximumIncrement"), Some(0x3008));
        assert_eq!(ix.get(""), Some(7));
        assert_eq!(ix.get("PsActiveProcessHea"), None);
        assert_eq!(ix.len(), 4);
        assert_eq!(ix.first_with_prefix("PsActive"), Some(0x3000));
        assert_eq!(ix.first_with_prefix("Nope"), None);
    }

    #[test]
    fn many_names_all_found() {
        let mut ix = NameIndex::default();
        for i in 0..5000u32 {
            ix.push(format!("GenGlobal{i}").as_bytes(), i);
        }
        let ix = ix.finish();
        assert!((0..5000u32).all(|i| ix.get(&format!("GenGlobal{i}")) == Some(i)));
        assert_eq!(ix.get("GenGlobal5000"), None);
    }
}
