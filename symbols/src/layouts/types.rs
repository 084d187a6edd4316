//! Building blocks shared by every layout table: offsets with candidates, provenance and
//! confidence, pool tags, scan windows and address-dereference paths.

use serde::Deserialize;
use std::fmt;

/// How much a value can be trusted, using the marks of `tcpip-afd-facts.md` (section header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[non_exhaustive]
pub enum Confidence {
    /// `[X]`: two or more independent sources agree.
    #[serde(rename = "X")]
    Agreed,
    /// `[C]`: stated directly by one cited source.
    #[serde(rename = "C")]
    Stated,
    /// `[!]`: sources disagree; every candidate is listed, the walker must validate.
    #[serde(rename = "!")]
    Conflicting,
    /// `[I]`: inferred (neighbouring builds, a peer's generic rule); no source states it.
    #[serde(rename = "I")]
    Inferred,
}

impl Confidence {
    /// The bracketed mark used by the facts document and docs/LAYOUTS.md.
    pub fn mark(self) -> &'static str {
        match self {
            Confidence::Agreed => "[X]",
            Confidence::Stated => "[C]",
            Confidence::Conflicting => "[!]",
            Confidence::Inferred => "[I]",
        }
    }
}

impl fmt::Display for Confidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mark())
    }
}

/// A field offset (bytes from the start of its structure) with every candidate the sources give.
///
/// The walker tries the candidates in order and keeps the first that validates (pool tag,
/// plausible value); the synthetic-dump builder lays objects out at [`Offset::preferred`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offset {
    /// Candidate offsets, preferred first; never empty and without duplicates (checked on load).
    #[serde(rename = "at")]
    pub candidates: Vec<u32>,
    /// Source tags as in the facts doc (`V3-J:<file>`, `MPF`, `RK`, `VG:<header>`, `GH`, `CM`,
    /// `ND24`), one clause per candidate where they differ.
    #[serde(rename = "src")]
    pub source: String,
    /// Confidence of the preferred candidate.
    #[serde(rename = "conf")]
    pub confidence: Confidence,
    /// Why the preferred candidate was chosen when a source disagrees, or other caveats.
    #[serde(default)]
    pub note: Option<String>,
}

impl Offset {
    /// The candidate the layout recommends (and the synthetic builder uses).
    pub fn preferred(&self) -> u32 {
        // Loading rejects empty candidate lists, so index 0 exists; 0 is a harmless fallback.
        self.candidates.first().copied().unwrap_or(0)
    }

    /// True when `off` is one of the candidates.
    pub fn allows(&self, off: u32) -> bool {
        self.candidates.contains(&off)
    }
}

/// A Windows pool tag: the four ASCII bytes as they appear in memory (`b"TcpE"`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolTag(pub [u8; 4]);

impl PoolTag {
    /// The tag as the little-endian `u32` read from `POOL_HEADER.PoolTag`.
    pub fn as_u32(self) -> u32 {
        u32::from_le_bytes(self.0)
    }

    /// The tag from the little-endian `u32` read out of a `POOL_HEADER`.
    pub fn from_u32(v: u32) -> PoolTag {
        PoolTag(v.to_le_bytes())
    }

    /// Parses a four-character ASCII tag.
    pub fn parse(s: &str) -> Option<PoolTag> {
        let b = s.as_bytes();
        if b.len() != 4 || !b.iter().all(|c| c.is_ascii_graphic()) {
            return None;
        }
        Some(PoolTag([b[0], b[1], b[2], b[3]]))
    }
}

impl fmt::Display for PoolTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &c in &self.0 {
            write!(f, "{}", c as char)?;
        }
        Ok(())
    }
}

impl fmt::Debug for PoolTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PoolTag({self})")
    }
}

impl<'de> Deserialize<'de> for PoolTag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PoolTag::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("pool tag {s:?} is not four printable ASCII bytes"))
        })
    }
}

/// Pool tags an object may carry (preferred first) and where they come from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tags {
    /// Tags, preferred first.
    pub tags: Vec<PoolTag>,
    /// Source tags.
    #[serde(rename = "src")]
    pub source: String,
    /// Confidence.
    #[serde(rename = "conf")]
    pub confidence: Confidence,
    /// Caveats.
    #[serde(default)]
    pub note: Option<String>,
}

impl Tags {
    /// True when `tag` is one of the accepted tags.
    pub fn accepts(&self, tag: PoolTag) -> bool {
        self.tags.contains(&tag)
    }

    /// The tag the synthetic builder writes.
    pub fn preferred(&self) -> PoolTag {
        self.tags.first().copied().unwrap_or(PoolTag(*b"????"))
    }
}

/// A window of offsets a heuristic scans: `start..end` (end exclusive) in steps of `step`.
///
/// Used where a peer does not know an offset and searches for it instead (MemProcFS's EPROCESS
/// scan in Win11 TCBs, GH's AFD signature search). Offsets are relative to the anchor named by
/// the field that holds the range.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanRange {
    /// First offset tried.
    pub start: u32,
    /// One past the last offset tried.
    pub end: u32,
    /// Distance between tries (non-zero).
    pub step: u32,
    /// Source tags.
    #[serde(rename = "src")]
    pub source: String,
    /// Confidence.
    #[serde(rename = "conf")]
    pub confidence: Confidence,
}

impl ScanRange {
    /// The offsets of the window, bounded by construction (`step` is checked non-zero on load).
    pub fn offsets(&self) -> impl Iterator<Item = u32> + '_ {
        (self.start..self.end).step_by(self.step.max(1) as usize)
    }
}

/// How to reach the IP address bytes from an address-object pointer read out of an endpoint.
///
/// Starting from the pointer value `p`, read a pointer at `p + derefs[0]`, then at
/// `result + derefs[1]`, and so on; the address bytes (4 for AF_INET, 16 for AF_INET6) are at
/// `final + ip_at`. Sources disagree on these paths for UDP and TIME_WAIT objects, so layouts
/// carry several, preferred first, and the walker keeps the one whose result validates.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddrPath {
    /// Offsets of the successive pointer reads (at most four; checked on load).
    pub derefs: Vec<u32>,
    /// Offset of the address bytes inside the last object reached.
    pub ip_at: u32,
    /// Source tags.
    #[serde(rename = "src")]
    pub source: String,
    /// Confidence.
    #[serde(rename = "conf")]
    pub confidence: Confidence,
}

/// How a remote address is stored inside a TIME_WAIT object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub enum AddrStorage {
    /// 16 address bytes stored in the object itself (MPF `TcTW`).
    #[serde(rename = "inline")]
    Inline,
    /// A pointer to the address bytes (V3 `_TCP_TIMEWAIT_ENDPOINT.RemoteAddress`).
    #[serde(rename = "pointer")]
    Pointer,
}
