//! Per-build layout of afd.sys endpoints (x64), facts 2.6. Only the list link, the type
//! signature and the owner are public knowledge (facts gap 10); the walker confirms each
//! endpoint with the signature rule and a plausible EPROCESS.

use super::tcpip::TableQuality;
use super::types::{Offset, ScanRange, Tags};
use serde::Deserialize;

/// AFD endpoint knowledge for one build.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AfdLayout {
    /// Stable identifier of the table.
    pub id: String,
    /// Builds this table was written for.
    pub builds: Vec<u32>,
    /// Builds sharing the layout.
    #[serde(default)]
    pub family: Vec<u32>,
    /// Overall confidence.
    pub quality: TableQuality,
    /// One-line provenance summary.
    pub summary: String,
    /// The endpoint structure.
    pub endpoint: AfdEndpointLayout,
}

/// `AFD_ENDPOINT` as far as public sources describe it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AfdEndpointLayout {
    /// Pool tags (no public source: facts gap 10; candidates are inferred).
    pub tags: Tags,
    /// Bytes the walker reads from the endpoint start.
    pub size: u32,
    /// LIST_ENTRY linking endpoints on `afd!AfdEndpointListHead` (endpoint = link - offset).
    pub list_link: Offset,
    /// The type signature USHORT at the endpoint start.
    pub signature: Offset,
    /// Bits that must all be set in the signature (`sig & mask == mask`, GH v1.4: 0xAFD0).
    pub signature_mask: u16,
    /// GH v1.4: distances searched backwards from the link for the signature word.
    pub signature_search_back: ScanRange,
    /// Owning `EPROCESS*` (GH v1.3).
    pub owner: Offset,
    /// GH v1.4: offsets searched for a pointer whose target's first QWORD is 3.
    pub owner_scan: ScanRange,
    /// Pointer to the transport-provider dispatch (GH: link-0x108 / link-0x118), if known.
    #[serde(default)]
    pub provider: Option<Offset>,
}
