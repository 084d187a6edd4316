//! Built-in per-build layouts of tcpip.sys, afd.sys and ntoskrnl structures (x64).
//!
//! Microsoft's public tcpip.pdb and afd.pdb carry no structure types, so the walkers depend on
//! these tables. They are data (`symbols/layouts/*.toml`, embedded and parsed once) transcribed
//! from `tcpip-afd-facts.md`: every offset lists all candidates the sources give, preferred
//! first, with source tags and a confidence mark. Walkers try candidates in order and keep the
//! first that validates (pool tags, sanity ranges); the synthetic-dump builder uses the
//! preferred ones. See docs/LAYOUTS.md for coverage, conflicts and gaps.
//!
//! ```
//! let l = symbols::layouts::tcpip(19045, None).unwrap();
//! assert_eq!(l.tcb.state.preferred(), 0x6C);
//! assert_eq!(l.matched.table_build, 19041); // 19042-19045 share 19041's layout
//! ```

mod afd;
mod doc;
mod fields;
mod load;
mod nt;
mod tcpip;
mod types;

pub use afd::{AfdEndpointLayout, AfdLayout};
pub use doc::coverage_markdown;
pub use fields::{FieldRef, StructLayout};
pub use nt::{EprocessLayout, KdbgLayout, KldrLayout, KuserLayout, NtLayout, PoolLayout};
pub use tcpip::{
    AddrInfoLayout, HashTableLayout, InetAfLayout, ListenerLayout, LocalAddressLayout,
    PartitionLayout, PortPoolLayout, PortPoolRoot, PortPoolRoots, SynLayout, TableQuality,
    TcbLayout, TcpipLayout, TimeWaitLayout, UdpLayout,
};
pub use types::{AddrPath, AddrStorage, Confidence, Offset, PoolTag, ScanRange, Tags};

use std::fmt;
use std::ops::Deref;

/// Why no layout could be returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// The build is older than every table of that kind (newer unknown builds fall back to the
    /// nearest older table instead).
    #[error("no built-in {kind} layout covers Windows build {build}: the oldest supported build is {oldest}")]
    BuildTooOld {
        /// "tcpip", "afd" or "nt".
        kind: &'static str,
        /// The build asked for.
        build: u32,
        /// The oldest build with a table.
        oldest: u32,
    },
    /// The embedded data is malformed (a bug in this crate; its tests catch it).
    #[error("built-in layout data file {file} is invalid: {message}")]
    Data {
        /// Data file name.
        file: String,
        /// What is wrong, naming the table and field.
        message: String,
    },
}

/// How the requested build was matched to a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MatchKind {
    /// The table was written for this build.
    Exact,
    /// The build shares the table build's layout (e.g. 19045 with 19041, 22631 with 22621).
    SameFamily,
    /// No table for this build or its family: the nearest older table is used.
    NearestOlder,
}

/// How the tcpip.sys file revision selected among variants of one build (only 9600 has them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevisionMatch {
    /// The build has a single table.
    NotSplit,
    /// The given revision selected the variant.
    Selected(u16),
    /// No file version was given: the union of all variants is returned.
    Unknown,
}

/// Provenance of a lookup, for reports ("layout inferred from build 19041").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Match {
    /// The build asked for.
    pub requested: u32,
    /// The build the table was written for.
    pub table_build: u32,
    /// How the two relate.
    pub kind: MatchKind,
    /// How a tcpip revision split was resolved.
    pub revision: RevisionMatch,
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            MatchKind::Exact => write!(f, "layout for build {}", self.table_build)?,
            MatchKind::SameFamily => write!(
                f,
                "layout of build {} (build {} shares it)",
                self.table_build, self.requested
            )?,
            MatchKind::NearestOlder => write!(
                f,
                "layout inferred from build {} (nearest older than {})",
                self.table_build, self.requested
            )?,
        }
        match self.revision {
            RevisionMatch::NotSplit => Ok(()),
            RevisionMatch::Selected(r) => write!(f, ", tcpip.sys revision {r}"),
            RevisionMatch::Unknown => {
                write!(
                    f,
                    ", tcpip.sys revision unknown: candidates of all revisions"
                )
            }
        }
    }
}

/// A table plus how it was matched; dereferences to the table.
#[derive(Debug)]
pub struct Resolved<T: 'static> {
    /// The table.
    pub layout: &'static T,
    /// How it was chosen.
    pub matched: Match,
}

// Manual impls: derived ones would demand `T: Clone`, but only the reference is copied.
impl<T> Clone for Resolved<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Resolved<T> {}

impl<T> Deref for Resolved<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.layout
    }
}

trait Keyed {
    fn builds(&self) -> &[u32];
    fn family(&self) -> &[u32];
}

macro_rules! keyed {
    ($t:ty) => {
        impl Keyed for $t {
            fn builds(&self) -> &[u32] {
                &self.builds
            }
            fn family(&self) -> &[u32] {
                &self.family
            }
        }
    };
}
keyed!(TcpipLayout);
keyed!(AfdLayout);
keyed!(NtLayout);

/// Picks the tables for `build`: exact, same family, or the nearest older table build.
fn pick<'a, T: Keyed>(
    kind: &'static str,
    tables: &'a [T],
    build: u32,
) -> Result<(Vec<&'a T>, u32, MatchKind), LayoutError> {
    let exact: Vec<&T> = tables
        .iter()
        .filter(|t| t.builds().contains(&build))
        .collect();
    if !exact.is_empty() {
        return Ok((exact, build, MatchKind::Exact));
    }
    let fam: Vec<&T> = tables
        .iter()
        .filter(|t| t.family().contains(&build))
        .collect();
    if let Some(first) = fam.first() {
        let tb = first.builds().first().copied().unwrap_or(build);
        return Ok((fam, tb, MatchKind::SameFamily));
    }
    let older = tables
        .iter()
        .flat_map(|t| t.builds().iter().copied())
        .filter(|&b| b < build)
        .max();
    match older {
        Some(tb) => {
            let v = tables.iter().filter(|t| t.builds().contains(&tb)).collect();
            Ok((v, tb, MatchKind::NearestOlder))
        }
        None => Err(LayoutError::BuildTooOld {
            kind,
            build,
            oldest: tables
                .iter()
                .flat_map(|t| t.builds().iter().chain(t.family()).copied())
                .min()
                .unwrap_or(0),
        }),
    }
}

/// The tcpip layout for a kernel build (`NtBuildNumber` without the high flag nibble, or the
/// dump header's MinorVersion) and, when known, tcpip.sys's VS_FIXEDFILEINFO FileVersion
/// (`[major, minor, build, revision]`).
///
/// The revision only matters where a table is split (9600: revision 19935 moved several
/// fields, facts 1.0); without it the union of the variants is returned
/// ([`RevisionMatch::Unknown`]). Builds without a table fall back to the family's table, then
/// to the nearest older table, and say so in [`Resolved::matched`].
pub fn tcpip(
    build: u32,
    tcpip_file_version: Option<[u16; 4]>,
) -> Result<Resolved<TcpipLayout>, LayoutError> {
    let reg = load::registry()?;
    let (found, table_build, kind) = pick("tcpip", &reg.tcpip, build)?;
    let mk = |layout, revision| Resolved {
        layout,
        matched: Match {
            requested: build,
            table_build,
            kind,
            revision,
        },
    };
    if let [only] = found.as_slice() {
        return Ok(mk(*only, RevisionMatch::NotSplit));
    }
    if let Some(v) = tcpip_file_version {
        let rev = v[3];
        let hit = found.iter().find(|t| {
            t.tcpip_revision_min.is_none_or(|m| rev >= m)
                && t.tcpip_revision_below.is_none_or(|b| rev < b)
        });
        if let Some(t) = hit {
            return Ok(mk(*t, RevisionMatch::Selected(rev)));
        }
    }
    match reg.tcpip_any_revision.get(&table_build) {
        Some(u) => Ok(mk(u, RevisionMatch::Unknown)),
        None => Err(LayoutError::Data {
            file: "tcpip-*.toml".into(),
            message: format!("build {table_build} has several tables but no revision union"),
        }),
    }
}

/// The afd layout for a kernel build.
pub fn afd(build: u32) -> Result<Resolved<AfdLayout>, LayoutError> {
    let reg = load::registry()?;
    let (found, table_build, kind) = pick("afd", &reg.afd, build)?;
    let matched = Match {
        requested: build,
        table_build,
        kind,
        revision: RevisionMatch::NotSplit,
    };
    match found.first() {
        Some(layout) => Ok(Resolved { layout, matched }),
        None => Err(LayoutError::BuildTooOld {
            kind: "afd",
            build,
            oldest: 0,
        }),
    }
}

/// The ntoskrnl fallback layout for a kernel build (for dumps without a kernel PDB).
pub fn nt(build: u32) -> Result<Resolved<NtLayout>, LayoutError> {
    let reg = load::registry()?;
    let (found, table_build, kind) = pick("nt", &reg.nt, build)?;
    let matched = Match {
        requested: build,
        table_build,
        kind,
        revision: RevisionMatch::NotSplit,
    };
    match found.first() {
        Some(layout) => Ok(Resolved { layout, matched }),
        None => Err(LayoutError::BuildTooOld {
            kind: "nt",
            build,
            oldest: 0,
        }),
    }
}

/// Builds for which tcpip, afd and nt all have a table written for the build or its family
/// (ascending). Other builds still resolve, by nearest-older fallback.
pub fn supported_builds() -> Result<Vec<u32>, LayoutError> {
    let reg = load::registry()?;
    fn covered<T: Keyed>(t: &[T]) -> Vec<u32> {
        t.iter()
            .flat_map(|x| x.builds().iter().chain(x.family()).copied())
            .collect()
    }
    let (a, n) = (covered(&reg.afd), covered(&reg.nt));
    let mut v: Vec<u32> = covered(&reg.tcpip)
        .into_iter()
        .filter(|b| a.contains(b) && n.contains(b))
        .collect();
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

/// Every tcpip table, including each revision variant (not the revision unions).
pub fn tcpip_tables() -> Result<&'static [TcpipLayout], LayoutError> {
    Ok(&load::registry()?.tcpip)
}

/// Parses the embedded data afresh (bypassing the cache) and returns the number of tables;
/// for benchmarks of the first-use cost.
#[doc(hidden)]
pub fn parse_embedded_uncached() -> Result<usize, LayoutError> {
    let r = load::build(load::FILES)?;
    Ok(r.tcpip.len() + r.tcpip_any_revision.len() + r.afd.len() + r.nt.len())
}

/// Every afd table.
pub fn afd_tables() -> Result<&'static [AfdLayout], LayoutError> {
    Ok(&load::registry()?.afd)
}

/// Every nt table.
pub fn nt_tables() -> Result<&'static [NtLayout], LayoutError> {
    Ok(&load::registry()?.nt)
}
