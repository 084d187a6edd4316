//! Typed per-build layouts of tcpip.sys private structures (x64).
//!
//! Microsoft's public tcpip.pdb has no structure types, so every offset here comes from peers'
//! reverse engineering (volatility3 JSONs, MemProcFS rules, rekall) as collected in
//! `tcpip-afd-facts.md`; each [`Offset`] carries its candidates, sources and confidence.

use super::types::{AddrPath, AddrStorage, Confidence, Offset, ScanRange, Tags};
use serde::Deserialize;

/// Overall trust in one build's table (docs/LAYOUTS.md "per-build confidence").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub enum TableQuality {
    /// A per-build source (volatility3 JSON, PDB-derived header) covers this build.
    #[serde(rename = "exact")]
    Exact,
    /// Parts of the table come from neighbouring builds or generic peer rules.
    #[serde(rename = "inferred")]
    Inferred,
    /// Sources disagree on fields the walker depends on; candidates carry all of them.
    #[serde(rename = "conflicting")]
    Conflicting,
}

/// Everything the tcpip walker needs for one build (and tcpip.sys revision range).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TcpipLayout {
    /// Stable identifier of the table (`"w9600r19935"`), used in reports and docs.
    pub id: String,
    /// Kernel builds this table was written for (exact matches).
    pub builds: Vec<u32>,
    /// Builds that share the kernel/tcpip layout of `builds` (e.g. 19042-19045 with 19041).
    #[serde(default)]
    pub family: Vec<u32>,
    /// Lowest tcpip.sys FileVersion revision (4th part) this table applies to, if split.
    #[serde(default)]
    pub tcpip_revision_min: Option<u16>,
    /// First tcpip.sys FileVersion revision this table no longer applies to, if split.
    #[serde(default)]
    pub tcpip_revision_below: Option<u16>,
    /// Overall confidence of the table.
    pub quality: TableQuality,
    /// One-line summary of where the table comes from.
    pub summary: String,
    /// The volatility3 netscan JSON volatility3 itself selects for this table's build, if any
    /// (`V3-J:{v3}` in a source string names it).
    #[serde(default)]
    pub v3_json: Option<String>,
    /// TCP connection object (`TcpE`/`TTcb`).
    pub tcb: TcbLayout,
    /// TIME_WAIT object (`TcTW`).
    pub time_wait: TimeWaitLayout,
    /// Half-open (SYN) endpoint; only volatility3/rekall up to 9600 describe it.
    #[serde(default)]
    pub syn: Option<SynLayout>,
    /// TCP listener (`TcpL`).
    pub listener: ListenerLayout,
    /// UDP endpoint (`UdpA`).
    pub udp: UdpLayout,
    /// `INETAF` (`InNl`): the address family of an endpoint.
    pub inet_af: InetAfLayout,
    /// `ADDRINFO` reached from `TcbLayout::addr_info`.
    pub addr_info: AddrInfoLayout,
    /// `LOCAL_ADDRESS` used by TCBs and listeners (and UDP before Win10).
    pub local_address: LocalAddressLayout,
    /// Win10+ UDP local-address object (volatility3 `_LOCAL_ADDRESS_WIN10_UDP`).
    #[serde(default)]
    pub local_address_udp: Option<LocalAddressLayout>,
    /// `tcpip!PartitionTable` records.
    pub partition: PartitionLayout,
    /// `RTL_DYNAMIC_HASH_TABLE` header used by the partition tables.
    pub hash_table: HashTableLayout,
    /// Port pools, port assignments and the compartment chain.
    pub port_pool: PortPoolLayout,
}

/// TCP endpoint / TCB (`_TCP_ENDPOINT`), facts 1.3.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TcbLayout {
    /// Pool tags (`TcpE`, `TTcb`).
    pub tags: Tags,
    /// Bytes the walker reads from the object start; every candidate lies inside. Not the
    /// allocation size (unknown; volatility3's JSON sizes undercount their own fields).
    pub size: u32,
    /// LIST_ENTRY through which hash-table buckets link the object (object = link - offset).
    pub hash_link: Offset,
    /// Pointer to the `INETAF` object.
    pub inet_af: Offset,
    /// Pointer to the `ADDRINFO` object.
    pub addr_info: Offset,
    /// TCP state (u32, facts 1.3 enum).
    pub state: Offset,
    /// Local port (big-endian u16).
    pub local_port: Offset,
    /// Remote port (big-endian u16).
    pub remote_port: Offset,
    /// Owning `EPROCESS*`.
    pub owner: Offset,
    /// MemProcFS's fallback: scan these offsets for a known EPROCESS address.
    #[serde(default)]
    pub owner_scan: Option<ScanRange>,
    /// Creation FILETIME; `None` where no source gives it.
    #[serde(default)]
    pub create_time: Option<Offset>,
}

/// TIME_WAIT TCB (`TcTW`), facts 1.7. Candidate `k` of each field belongs to the same source
/// variant (e.g. k = 0 volatility3, k = 1 MemProcFS on 9200/9600), so a walker should try the
/// variants as sets. The remote address's storage is listed separately because on 7601 both
/// sources put it at 0x58 but disagree on inline vs pointer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TimeWaitLayout {
    /// Pool tags (`TcTW`).
    pub tags: Tags,
    /// Bytes the walker reads (MemProcFS reads 0xA0).
    pub size: u32,
    /// Hash-bucket link (the object starts at the link).
    pub link: Offset,
    /// Pointer to `INETAF`.
    pub inet_af: Offset,
    /// Local port (big-endian u16).
    pub local_port: Offset,
    /// Remote port (big-endian u16).
    pub remote_port: Offset,
    /// Pointer to the local address object.
    pub local_addr: Offset,
    /// Paths from `local_addr`'s value to the IP bytes, preferred first.
    pub local_addr_paths: Vec<AddrPath>,
    /// Remote address: inline bytes or a pointer (see `remote_addr_storage`).
    pub remote_addr: Offset,
    /// Storage form per source variant `k` (same index as the other fields' candidates; the
    /// builder uses index 0). On 7601 both variants put the address at 0x58, so `remote_addr`
    /// has one candidate while this lists pointer (volatility3) and inline (MemProcFS).
    pub remote_addr_storage: Vec<AddrStorage>,
    /// MemProcFS's "Time" QWORD shown as FILETIME (semantics unstated, facts 1.7 and gap 1).
    #[serde(default)]
    pub time: Option<Offset>,
}

/// Half-open connection (`_TCP_SYN_ENDPOINT`), facts 1.7; owner via `_SYN_OWNER.Process`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SynLayout {
    /// Bytes the walker reads.
    pub size: u32,
    /// LIST_ENTRY link.
    pub list_entry: Offset,
    /// Pointer to `INETAF`.
    pub inet_af: Offset,
    /// Pointer to `LOCAL_ADDRESS`.
    pub local_addr: Offset,
    /// Pointer to `_SYN_OWNER`.
    pub owner: Offset,
    /// Pointer to the remote address bytes.
    pub remote_addr: Offset,
    /// Local port (big-endian u16).
    pub local_port: Offset,
    /// Remote port (big-endian u16).
    pub remote_port: Offset,
    /// `_SYN_OWNER.Process` (EPROCESS*).
    pub syn_owner_process: Offset,
}

/// TCP listener (`_TCP_LISTENER`, `TcpL`), facts 1.4.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ListenerLayout {
    /// Pool tags (`TcpL`).
    pub tags: Tags,
    /// Bytes the walker reads.
    pub size: u32,
    /// Pointer to `INETAF`.
    pub inet_af: Offset,
    /// Owning `EPROCESS*`.
    pub owner: Offset,
    /// Creation FILETIME (MemProcFS accepts it only when the top byte is 0x01).
    #[serde(default)]
    pub create_time: Option<Offset>,
    /// Pointer to `LOCAL_ADDRESS`; null means wildcard.
    pub local_addr: Offset,
    /// Local port (big-endian u16).
    pub port: Offset,
    /// Port-assignment chain link (`Next`); port-pool entries point here.
    pub link: Offset,
}

/// UDP endpoint (`_UDP_ENDPOINT`, `UdpA`), facts 1.5.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct UdpLayout {
    /// Pool tags (`UdpA`).
    pub tags: Tags,
    /// Bytes the walker reads.
    pub size: u32,
    /// Pointer to `INETAF`.
    pub inet_af: Offset,
    /// Owning `EPROCESS*`.
    pub owner: Offset,
    /// Creation FILETIME.
    #[serde(default)]
    pub create_time: Option<Offset>,
    /// Pointer to the local address object; null means wildcard.
    pub local_addr: Offset,
    /// Paths from `local_addr`'s value to the IP bytes, preferred first (facts 1.5 [!]).
    pub local_addr_paths: Vec<AddrPath>,
    /// Local port (big-endian u16).
    pub port: Offset,
    /// Port-assignment chain link (`Next`).
    pub link: Offset,
    /// Remote port of a connected UDP socket (MemProcFS, 19041+).
    #[serde(default)]
    pub remote_port: Option<Offset>,
    /// Pointer into an `IPpa` block holding the connected remote address (MemProcFS, 19041+).
    #[serde(default)]
    pub remote_addr: Option<Offset>,
    /// Offset of the IPv4 remote address inside the `IPpa` block (MemProcFS, 22000+).
    #[serde(default)]
    pub remote_ip_in_ippa: Option<Offset>,
}

/// `INETAF` (`InNl`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct InetAfLayout {
    /// Pool tags (`InNl`).
    pub tags: Tags,
    /// Bytes the walker reads.
    pub size: u32,
    /// `AddressFamily` (u16: 2 = AF_INET, 0x17 = AF_INET6).
    pub address_family: Offset,
}

/// `ADDRINFO`: local `LOCAL_ADDRESS*` and remote address pointer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AddrInfoLayout {
    /// Bytes the walker reads.
    pub size: u32,
    /// `Local` (LOCAL_ADDRESS*).
    pub local: Offset,
    /// `Remote` (pointer to the address bytes).
    pub remote: Offset,
}

/// `LOCAL_ADDRESS` (and the Win10 UDP variant): `pData` then a further pointer to the IP bytes
/// for the TCP variant (two dereferences, facts 1.3), one dereference for the UDP variant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LocalAddressLayout {
    /// Bytes the walker reads.
    pub size: u32,
    /// `pData`.
    pub pdata: Offset,
    /// Set for `TcpipLayout::local_address_udp` (names the structure in checks and docs).
    #[serde(skip)]
    pub(crate) win10_udp: bool,
}

/// One record of the array `tcpip!PartitionTable` points to, facts 1.2.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PartitionLayout {
    /// Record size (array stride).
    pub stride: Offset,
    /// First hash-table pointer (+0x00, MemProcFS: start of the `TcHT` block body).
    pub ht_first: Offset,
    /// volatility3's `Endpoints` hash-table pointer.
    pub ht_endpoints: Offset,
    /// volatility3's `UnknownHashTable` (MemProcFS: start of the per-partition header array).
    pub ht_third: Offset,
    /// MemProcFS's record-finding probe before 1903: a self-linked empty LIST_ENTRY here.
    #[serde(default)]
    pub self_linked_probe: Option<Offset>,
    /// Upper bound MemProcFS accepts for `tcpip!PartitionCount` (u32).
    pub max_count: u32,
    /// Minimum of record[ht_third] - record[ht_first] (MemProcFS `oStartHT`).
    pub min_table_span: u32,
    /// On 20348+ MemProcFS also walks the headers before the array ("common" tables, TcTW).
    pub common_tables_before_array: bool,
    /// Tag of the block holding the hash-table headers (`TcHT`).
    pub header_block_tags: Tags,
    /// Tag of a bucket directory block (`HTab`).
    pub directory_tags: Tags,
}

/// `RTL_DYNAMIC_HASH_TABLE` (x64, 0x28 bytes), facts 1.2.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HashTableLayout {
    /// Header size.
    pub size: u32,
    /// `TableSize` (u32, buckets).
    pub table_size: Offset,
    /// `Pivot` (u32).
    pub pivot: Offset,
    /// `DivisorMask` (u32).
    pub divisor_mask: Offset,
    /// `NumEntries` (u32).
    pub num_entries: Offset,
    /// `NonEmptyBuckets` (u32).
    pub non_empty_buckets: Offset,
    /// `Directory` (pointer).
    pub directory: Offset,
    /// Buckets per directory page before the table goes two-level.
    pub first_level_buckets: u32,
    /// Maximum first-level directory entries of a two-level table.
    pub max_second_level_dirs: u32,
}

/// Where the walker finds the INET_PORT_POOL of a protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub enum PortPoolRoot {
    /// Globals `tcpip!TcpPortPool` / `tcpip!UdpPortPool` point at the pool.
    #[serde(rename = "globals")]
    Globals,
    /// `tcpip!TcpCompartmentSet`/`UdpCompartmentSet` -> InCS -> InCo -> TcCo/UdCo -> InPP.
    #[serde(rename = "compartments")]
    CompartmentChain,
}

/// Port-pool roots to try, preferred first.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PortPoolRoots {
    /// Root kinds, preferred first.
    pub kinds: Vec<PortPoolRoot>,
    /// Source tags.
    #[serde(rename = "src")]
    pub source: String,
    /// Confidence.
    #[serde(rename = "conf")]
    pub confidence: Confidence,
}

/// INET_PORT_POOL, PORT_ASSIGNMENT(_ENTRY) and the compartment chain, facts 1.6.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PortPoolLayout {
    /// How to reach the pool.
    pub roots: PortPoolRoots,
    /// `INET_COMPARTMENT_SET.InetCompartment` (pointer).
    pub compartment_set_inet: Offset,
    /// `INET_COMPARTMENT.ProtocolCompartment` (pointer).
    pub compartment_protocol: Offset,
    /// `PROTOCOL_COMPARTMENT.PortPool` (pointer).
    pub protocol_port_pool: Offset,
    /// Bytes of the INET_PORT_POOL the walker reads.
    pub size: u32,
    /// `PortBitMap` (RTL_BITMAP: SizeOfBitMap u32 at +0, Buffer pointer at +8).
    pub port_bitmap: Offset,
    /// `PortAssignments[256]` (pointers to `InPA` blocks, index port >> 8).
    pub port_assignments: Offset,
    /// MemProcFS locates `PortAssignments` by scanning here for a pointer to an `InPA` block.
    #[serde(default)]
    pub port_assignments_scan: Option<ScanRange>,
    /// `PORT_ASSIGNMENT.InPaBigPoolBase`: pointer to the page-aligned entry array.
    pub inpa_entries: Offset,
    /// `PORT_ASSIGNMENT_ENTRY` size (array stride).
    pub entry_stride: Offset,
    /// Offset of the tagged object pointer inside an entry.
    pub entry_ptr: Offset,
    /// Low bits of an entry pointer that are flags, cleared before use (V3 2, MPF 3).
    pub entry_tag_bits: u32,
    /// `InPP` tags.
    pub pool_tags: Tags,
    /// `InPA` tags.
    pub assignment_tags: Tags,
    /// `InCS` tags.
    pub compartment_set_tags: Tags,
    /// `InCo` tags.
    pub compartment_tags: Tags,
    /// `TcCo` tags (TCP protocol compartment).
    pub tcp_compartment_tags: Tags,
    /// `UdCo` tags (UDP protocol compartment).
    pub udp_compartment_tags: Tags,
}
