//! The two roots of tcpip's endpoint state: the partition table (TCBs and TIME_WAIT entries in
//! RTL dynamic hash tables) and the port pools (port bitmap, listeners and UDP endpoints).

use super::hash::{walk_table, HashHeader};
use super::obj::{has_tag, pool_tag};
use super::parse::Parser;
use crate::analysis::capacity::PortBitmap;
use crate::model::ObjectKind;
use crate::model::Protocol;
use crate::target::{Target, TargetExt};
use crate::walk::is_kernel_ptr;
use std::collections::{BTreeSet, HashSet};
use symbols::layouts::{PortPoolLayout, PortPoolRoot, TcpipLayout};

/// Objects chained on one port (listeners sharing a port, SO_REUSEADDR binds).
const MAX_CHAIN: usize = 4096;
/// The port bitmap covers every 16-bit port.
const PORT_BITS: u32 = 65536;

/// Walks every partition's hash tables.
pub fn walk_partitions(p: &mut Parser<'_>) {
    let t = p.target;
    let l = &p.layout.partition;
    let table = match p
        .globals
        .address(t, "PartitionTable")
        .and_then(|va| t.read_u64(va).map_err(|e| e.to_string()))
    {
        Ok(v) if is_kernel_ptr(v, 8) => v,
        Ok(v) => {
            p.diag.warn(
                "partition-table",
                format!("tcpip!PartitionTable holds {v:#x}, not a kernel pointer"),
            );
            return;
        }
        Err(e) => {
            p.diag
                .warn("partition-table", format!("tcpip!PartitionTable: {e}"));
            return;
        }
    };
    // MemProcFS reads a DWORD and rejects 0 or > 64; volatility3 reads one byte (facts 1.1).
    let count = match p
        .globals
        .address(t, "PartitionCount")
        .and_then(|va| t.read_u32(va).map_err(|e| e.to_string()))
    {
        Ok(n) if n >= 1 && n <= l.max_count => n,
        Ok(n) => {
            p.diag.warn(
                "partition-table",
                format!("tcpip!PartitionCount is {n}, outside 1..={}", l.max_count),
            );
            return;
        }
        Err(e) => {
            p.diag
                .warn("partition-table", format!("tcpip!PartitionCount: {e}"));
            return;
        }
    };
    let fields = [
        l.ht_first.clone(),
        l.ht_endpoints.clone(),
        l.ht_third.clone(),
    ];
    // The stride is the one whose records all hold valid hash-table headers (facts 1.2 [!]: 0x80
    // before 19041 per volatility3, 0xC0 "1903 and above" per MemProcFS).
    let valid_record = |rec: u64| {
        fields.iter().all(|f| {
            t.read_u64(rec + u64::from(f.preferred()))
                .is_ok_and(|ht| HashHeader::read(t, ht).is_ok())
        })
    };
    let stride = l
        .stride
        .candidates
        .iter()
        .copied()
        .find(|&s| (0..count).all(|i| valid_record(table + u64::from(i) * u64::from(s))))
        .unwrap_or_else(|| l.stride.preferred());
    if !l.stride.allows(stride) || stride != l.stride.preferred() {
        p.diag.note(format!(
            "partition record stride {stride:#x} chosen by validation"
        ));
    }
    let mut walked = HashSet::new();
    for i in 0..count {
        let rec = table + u64::from(i) * u64::from(stride);
        for f in &fields {
            let Ok(ht) = t.read_u64(rec + u64::from(f.preferred())) else {
                p.diag.warn(
                    "partition-unreadable",
                    format!("partition {i} record {rec:#x} is not readable"),
                );
                continue;
            };
            if !walked.insert(ht) {
                continue;
            }
            let what = format!("partition {i} hash table");
            let diag = &mut *p.diag;
            match walk_table(t, ht, &what, diag) {
                Ok(w) => {
                    for link in w.links {
                        p.from_hash_link(link, "partition-table");
                    }
                }
                Err(e) => p
                    .diag
                    .warn("hash-table-invalid", format!("{what} {ht:#x}: {e}")),
            }
        }
    }
}

/// Where a protocol's INET_PORT_POOL is.
fn port_pool(p: &mut Parser<'_>, protocol: Protocol) -> Option<u64> {
    let t = p.target;
    let l = &p.layout.port_pool;
    let (global, set) = match protocol {
        Protocol::Tcp => ("TcpPortPool", "TcpCompartmentSet"),
        Protocol::Udp => ("UdpPortPool", "UdpCompartmentSet"),
    };
    let proto_tags = if protocol == Protocol::Tcp {
        &l.tcp_compartment_tags
    } else {
        &l.udp_compartment_tags
    };
    let mut why = Vec::new();
    for kind in &l.roots.kinds {
        let pool = match kind {
            PortPoolRoot::Globals => p
                .globals
                .address(t, global)
                .and_then(|va| t.read_u64(va).map_err(|e| e.to_string())),
            PortPoolRoot::CompartmentChain => (|| {
                let cs = t
                    .read_u64(p.globals.address(t, set)?)
                    .map_err(|e| e.to_string())?;
                let hop = |from: u64,
                           off: u32,
                           tags: &symbols::layouts::Tags,
                           name: &str|
                 -> Result<u64, String> {
                    if !has_tag(t, from, tags) {
                        return Err(format!(
                            "{name} {from:#x} lacks pool tag {}",
                            tags.preferred()
                        ));
                    }
                    t.read_u64(from + u64::from(off)).map_err(|e| e.to_string())
                };
                let co = hop(
                    cs,
                    l.compartment_set_inet.preferred(),
                    &l.compartment_set_tags,
                    "compartment set",
                )?;
                let pc = hop(
                    co,
                    l.compartment_protocol.preferred(),
                    &l.compartment_tags,
                    "compartment",
                )?;
                hop(
                    pc,
                    l.protocol_port_pool.preferred(),
                    proto_tags,
                    "protocol compartment",
                )
            })(),
            _ => continue,
        };
        match pool {
            // INET_PORT_POOL is a big-pool block: page-aligned, no POOL_HEADER (facts 1.6, 2.1).
            Ok(v) if is_kernel_ptr(v, 0x1000) => return Some(v),
            Ok(v) => why.push(format!(
                "{kind:?}: {v:#x} is not a page-aligned kernel pointer"
            )),
            Err(e) => why.push(format!("{kind:?}: {e}")),
        }
    }
    p.diag.warn(
        "port-pool",
        format!("{protocol} port pool not found: {}", why.join("; ")),
    );
    None
}

/// Reads a protocol's port bitmap and walks the objects assigned to every marked port.
pub fn walk_port_pool(p: &mut Parser<'_>, protocol: Protocol) -> Option<PortBitmap> {
    let t = p.target;
    let pool = port_pool(p, protocol)?;
    let l = &p.layout.port_pool;
    let bm = pool + u64::from(l.port_bitmap.preferred());
    let bits = t.read_u32(bm).ok()?;
    let buffer = t.read_u64(bm + 8).ok()?;
    if bits != PORT_BITS || !is_kernel_ptr(buffer, 4) {
        p.diag.warn("port-bitmap", format!("{protocol} port bitmap at {bm:#x}: {bits} bits at {buffer:#x}, expected {PORT_BITS} bits"));
        return None;
    }
    let raw = match t.read_vec(buffer, (PORT_BITS / 8) as usize) {
        Ok(r) => r,
        Err(e) => {
            p.diag
                .warn("port-bitmap", format!("{protocol} port bitmap buffer: {e}"));
            return None;
        }
    };
    let ports: BTreeSet<u16> = (0..PORT_BITS)
        .filter(|&n| raw[(n / 8) as usize] >> (n % 8) & 1 == 1)
        .map(|n| n as u16)
        .collect();
    let mask = tag_mask(l);
    let mut inpa_cache: std::collections::HashMap<u16, Option<u64>> = Default::default();
    for &port in &ports {
        if port == 0 {
            continue;
        }
        if t.interrupted() {
            p.diag.warn(
                "interrupted",
                format!("{protocol} port pool walk interrupted at port {port}"),
            );
            break;
        }
        let block = port >> 8;
        let entries = *inpa_cache
            .entry(block)
            .or_insert_with(|| assignment_entries(t, l, pool, block));
        let Some(entries) = entries else {
            p.diag.warn(
                "port-assignment",
                format!(
                    "{protocol} port {port}: no readable InPA block for ports {}-{}",
                    block << 8,
                    (block << 8) | 0xFF
                ),
            );
            continue;
        };
        let Ok(first) = t.read_u64(entry_address(l, entries, port)) else {
            p.diag.warn(
                "port-assignment",
                format!("{protocol} port {port}: assignment entry unreadable"),
            );
            continue;
        };
        let mut link = first & mask;
        let mut hops = 0;
        while link != 0 && hops < MAX_CHAIN {
            hops += 1;
            if !is_kernel_ptr(link, 8) || !assigned_object(p, link) {
                p.diag.warn(
                    "port-assignment",
                    format!(
                        "{protocol} port {port}: chain link {link:#x} leads to no known object"
                    ),
                );
                break;
            }
            link = match t.read_u64(link) {
                Ok(n) => n & mask,
                Err(_) => break,
            };
        }
    }
    Some(PortBitmap { ports })
}

/// Parses the object whose port-assignment link is at `link`; false when no known object owns it.
fn assigned_object(p: &mut Parser<'_>, link: u64) -> bool {
    match holder_at(p.target, p.layout, link) {
        Some((ObjectKind::Listener, obj)) => p.listener(obj, "port-pool"),
        Some((ObjectKind::Udp, obj)) => p.udp(obj, "port-pool"),
        Some((_, obj)) => p.tcb(obj, "port-pool"),
        None => return false,
    }
    true
}

/// Low bits of an assignment-entry pointer that are flags (V3 masks 2, MPF 3; facts 1.6).
pub(super) fn tag_mask(l: &PortPoolLayout) -> u64 {
    !((1u64 << l.entry_tag_bits) - 1)
}

/// The page-aligned entry array of the InPA block covering ports `block << 8 ..= block << 8 | 0xFF`.
pub(super) fn assignment_entries(
    t: &dyn Target,
    l: &PortPoolLayout,
    pool: u64,
    block: u16,
) -> Option<u64> {
    let inpa = t
        .read_u64(pool + u64::from(l.port_assignments.preferred()) + 8 * u64::from(block))
        .ok()?;
    if inpa == 0 || !has_tag(t, inpa, &l.assignment_tags) {
        return None;
    }
    l.inpa_entries.candidates.iter().find_map(|&off| {
        t.read_u64(inpa + u64::from(off))
            .ok()
            .filter(|&e| is_kernel_ptr(e, 0x1000))
    })
}

/// Where the tagged chain pointer of `port` sits in its block's entry array.
pub(super) fn entry_address(l: &PortPoolLayout, entries: u64, port: u16) -> u64 {
    entries
        + u64::from(l.entry_stride.preferred()) * u64::from(port & 0xFF)
        + u64::from(l.entry_ptr.preferred())
}

/// The object whose port-assignment link is at `link`, decided by pool tag: the layout's link
/// offsets first, then MemProcFS's generic window (a TcpL/TcpE/UdpA header up to 0xC0 bytes
/// before the link, facts 1.6).
pub(super) fn holder_at(t: &dyn Target, l: &TcpipLayout, link: u64) -> Option<(ObjectKind, u64)> {
    let lis = link.wrapping_sub(u64::from(l.listener.link.preferred()));
    if has_tag(t, lis, &l.listener.tags) {
        return Some((ObjectKind::Listener, lis));
    }
    let udp = link.wrapping_sub(u64::from(l.udp.link.preferred()));
    if has_tag(t, udp, &l.udp.tags) {
        return Some((ObjectKind::Udp, udp));
    }
    (0x10..=0xC0u64).step_by(8).find_map(|off| {
        let obj = link.wrapping_sub(off);
        let tag = pool_tag(t, obj)?;
        if l.tcb.tags.accepts(tag) {
            Some((ObjectKind::Tcb, obj))
        } else if l.listener.tags.accepts(tag) {
            Some((ObjectKind::Listener, obj))
        } else if l.udp.tags.accepts(tag) {
            Some((ObjectKind::Udp, obj))
        } else {
            None
        }
    })
}
