//! tcpip's global variables without tcpip.pdb.
//!
//! When the symbol stores lack tcpip.pdb, the walker still needs four globals: `PartitionTable`,
//! `PartitionCount`, and the TCP and UDP port-pool roots (`TcpPortPool`/`UdpPortPool` or
//! `TcpCompartmentSet`/`UdpCompartmentSet`). They live in tcpip's writable data section, so every
//! aligned qword there is a candidate, kept only if what it points to validates the way the walk
//! will use it (MemProcFS finds these objects by similar checks, tcpip-afd-facts 1.2 and 1.6):
//! a partition table is an array of records whose pointers lead to self-consistent
//! RTL_DYNAMIC_HASH_TABLE headers; a port pool holds a 65,536-bit RTL_BITMAP; a compartment set
//! carries the "InCS" pool tag and leads to "TcCo"/"UdCo". Results are cached per tcpip build
//! (timestamp and image size), so a triage run infers once per build.

use super::hash::HashHeader;
use super::obj::has_tag;
use super::tables;
use crate::diag::Diagnostics;
use crate::model::ObjectKind;
use crate::target::{ModuleInfo, Target, TargetExt};
use crate::walk::is_kernel_ptr;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use symbols::layouts::{PortPoolRoot, TcpipLayout};

/// Largest writable data the scan reads (tcpip's .data is a few hundred KiB).
const MAX_SCAN_BYTES: u32 = 8 << 20;

/// Where tcpip's globals are: from tcpip.pdb, or inferred.
#[derive(Debug, Default, Clone)]
pub struct Globals {
    inferred: HashMap<&'static str, u64>,
}

impl Globals {
    /// Address of the global `name`: the PDB's answer, else the inferred one.
    pub fn address(&self, t: &dyn Target, name: &str) -> Result<u64, String> {
        match t.symbol_address("tcpip", name) {
            Ok(va) => Ok(va),
            Err(e) => self
                .inferred
                .get(name)
                .copied()
                .ok_or_else(|| e.to_string()),
        }
    }
}

type CacheKey = (u32, u32);
fn cache() -> &'static Mutex<HashMap<CacheKey, HashMap<&'static str, u32>>> {
    static C: OnceLock<Mutex<HashMap<CacheKey, HashMap<&'static str, u32>>>> = OnceLock::new();
    C.get_or_init(Default::default)
}

/// Resolves tcpip's globals: from symbols when `PartitionTable` resolves, else by inference.
pub fn globals(
    t: &dyn Target,
    module: Option<&ModuleInfo>,
    layout: &TcpipLayout,
    diag: &mut Diagnostics,
) -> Globals {
    if t.symbol_address("tcpip", "PartitionTable").is_ok() {
        return Globals::default();
    }
    let Some(m) = module else {
        return Globals::default();
    };
    let key = (m.timestamp, m.size);
    let cached = cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
        .cloned();
    let rvas = match cached {
        Some(r) => r,
        None => {
            let r = infer(t, m, layout);
            cache()
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key, r.clone());
            r
        }
    };
    if rvas.is_empty() {
        diag.warn(
            "tcpip-symbols",
            "no tcpip.pdb, and tcpip's globals could not be inferred from its data section",
        );
    } else {
        let mut names: Vec<&str> = rvas.keys().copied().collect();
        names.sort_unstable();
        diag.note(format!("tcpip symbols INFERRED (no tcpip.pdb): {} found by validating candidates in tcpip's data section", names.join(", ")));
    }
    Globals {
        inferred: rvas
            .into_iter()
            .map(|(k, rva)| (k, m.base + u64::from(rva)))
            .collect(),
    }
}

/// Writable, non-executable sections of the image: (rva, size).
fn data_sections(t: &dyn Target, base: u64) -> Vec<(u32, u32)> {
    let Ok(lfanew) = t.read_u32(base + 0x3C) else {
        return vec![];
    };
    let pe = base + u64::from(lfanew);
    if t.read_u32(pe).ok() != Some(0x4550) {
        return vec![];
    }
    let (Ok(nsec), Ok(opt)) = (t.read_u16(pe + 6), t.read_u16(pe + 20)) else {
        return vec![];
    };
    let first = pe + 24 + u64::from(opt);
    (0..u64::from(nsec.min(96)))
        .filter_map(|i| {
            let s = t.read_vec(first + 40 * i, 40).ok()?;
            let u32_at = |o: usize| u32::from_le_bytes(s[o..o + 4].try_into().unwrap_or([0; 4]));
            let (size, rva, ch) = (u32_at(8), u32_at(12), u32_at(36));
            // IMAGE_SCN_MEM_WRITE set, IMAGE_SCN_MEM_EXECUTE clear.
            (ch & 0x8000_0000 != 0 && ch & 0x2000_0000 == 0 && size > 0)
                .then_some((rva, size.min(MAX_SCAN_BYTES)))
        })
        .collect()
}

fn infer(t: &dyn Target, m: &ModuleInfo, l: &TcpipLayout) -> HashMap<&'static str, u32> {
    let mut out = HashMap::new();
    for (rva, size) in data_sections(t, m.base) {
        let mut bytes = vec![0u8; size as usize];
        // Pages of .data may be missing; read page by page and keep what is there.
        let mut present = vec![false; size.div_ceil(0x1000) as usize];
        for (i, chunk) in bytes.chunks_mut(0x1000).enumerate() {
            present[i] = t
                .read_virtual(m.base + u64::from(rva) + 0x1000 * i as u64, chunk)
                .is_ok_and(|n| n == chunk.len());
        }
        let qword = |o: usize| {
            present[o / 0x1000]
                .then(|| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap_or([0; 8])))
        };
        let dword = |o: usize| {
            present[o / 0x1000]
                .then(|| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap_or([0; 4])))
        };
        for o in (0..bytes.len()).step_by(8).filter(|o| o + 8 <= bytes.len()) {
            let Some(v) = qword(o).filter(|&v| is_kernel_ptr(v, 8)) else {
                continue;
            };
            let var = rva + o as u32;
            if !out.contains_key("PartitionTable") && partition_records(t, l, v, 1) {
                // PartitionCount: the u32 nearest the table pointer whose every record validates.
                let count = (0..bytes.len())
                    .step_by(4)
                    .filter(|c| c + 4 <= bytes.len())
                    .filter_map(|c| {
                        dword(c)
                            .filter(|&n| (1..=l.partition.max_count).contains(&n))
                            .map(|n| (c, n))
                    })
                    .filter(|&(c, _)| c != o && c != o + 4)
                    .filter(|&(_, n)| partition_records(t, l, v, n))
                    .min_by_key(|&(c, n)| (c.abs_diff(o), std::cmp::Reverse(n)));
                if let Some((c, _)) = count {
                    out.insert("PartitionTable", var);
                    out.insert("PartitionCount", rva + c as u32);
                }
                continue;
            }
            match pool_root(t, l, v) {
                Some((PortPoolRoot::Globals, tcp)) => {
                    out.entry(if tcp { "TcpPortPool" } else { "UdpPortPool" })
                        .or_insert(var);
                }
                Some((_, tcp)) => {
                    out.entry(if tcp {
                        "TcpCompartmentSet"
                    } else {
                        "UdpCompartmentSet"
                    })
                    .or_insert(var);
                }
                None => {}
            }
        }
    }
    out
}

/// True when `n` partition records at `table` each lead to valid hash-table headers.
fn partition_records(t: &dyn Target, l: &TcpipLayout, table: u64, n: u32) -> bool {
    let p = &l.partition;
    p.stride.candidates.iter().any(|&stride| {
        (0..u64::from(n)).all(|i| {
            let rec = table + i * u64::from(stride);
            [&p.ht_first, &p.ht_endpoints, &p.ht_third].iter().all(|f| {
                t.read_u64(rec + u64::from(f.preferred()))
                    .is_ok_and(|ht| is_kernel_ptr(ht, 8) && HashHeader::read(t, ht).is_ok())
            })
        })
    })
}

/// What kind of port-pool root `v` is, and whether it is TCP's (else UDP's).
fn pool_root(t: &dyn Target, l: &TcpipLayout, v: u64) -> Option<(PortPoolRoot, bool)> {
    let pp = &l.port_pool;
    if is_kernel_ptr(v, 0x1000) {
        let bm = v + u64::from(pp.port_bitmap.preferred());
        if t.read_u32(bm).ok() == Some(65536)
            && t.read_u64(bm + 8).is_ok_and(|b| is_kernel_ptr(b, 4))
        {
            return Some((PortPoolRoot::Globals, pool_is_tcp(t, l, v)?));
        }
    }
    if has_tag(t, v, &pp.compartment_set_tags) {
        let co = t
            .read_u64(v + u64::from(pp.compartment_set_inet.preferred()))
            .ok()?;
        let pc = t
            .read_u64(co + u64::from(pp.compartment_protocol.preferred()))
            .ok()?;
        if has_tag(t, pc, &pp.tcp_compartment_tags) {
            return Some((PortPoolRoot::CompartmentChain, true));
        }
        if has_tag(t, pc, &pp.udp_compartment_tags) {
            return Some((PortPoolRoot::CompartmentChain, false));
        }
    }
    None
}

/// Tells a TCP pool from a UDP pool by the kind of the first object its assignments hold.
fn pool_is_tcp(t: &dyn Target, l: &TcpipLayout, pool: u64) -> Option<bool> {
    let pp = &l.port_pool;
    (0..256u16).find_map(|block| {
        let entries = tables::assignment_entries(t, pp, pool, block)?;
        (0..256u16).find_map(|low| {
            let e = t
                .read_u64(tables::entry_address(pp, entries, block << 8 | low))
                .ok()?;
            let link = e & tables::tag_mask(pp);
            // An empty entry: no object on this port.
            if link == 0 {
                return None;
            }
            let (kind, _) = tables::holder_at(t, l, link)?;
            Some(kind != ObjectKind::Udp)
        })
    })
}
