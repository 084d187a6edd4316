//! afd.sys endpoints: one per socket a process (or a kernel client) opened through Winsock.
//!
//! `afd!AfdEndpointListHead` links every AFD endpoint (tcpip-afd-facts 2.6, CodeMachine). Only the
//! link, the 0xAFDx type signature and the owning EPROCESS are public knowledge (gap 10), so AFD
//! gives a second, independent count of sockets per process, not addresses.

use crate::diag::Diagnostics;
use crate::kernel::Processes;
use crate::target::{Target, TargetExt};
use crate::walk::walk_list;
use serde::Serialize;
use std::collections::BTreeMap;
use symbols::layouts::AfdLayout;

/// More sockets than any machine has (each costs non-paged pool).
const MAX_AFD_ENDPOINTS: usize = 4_000_000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AfdScan {
    /// AFD endpoints on the list that carried a valid signature.
    pub endpoints: u64,
    /// Sockets per owning pid (4 = System/kernel clients).
    pub by_pid: BTreeMap<u64, u64>,
    /// Endpoints whose owner pointer did not lead to a process.
    pub unknown_owner: u64,
}

pub fn scan(
    target: &dyn Target,
    layout: &AfdLayout,
    procs: &mut Processes,
    diag: &mut Diagnostics,
) -> Option<AfdScan> {
    let head = match target.symbol_address("afd", "AfdEndpointListHead") {
        Ok(h) => h,
        Err(e) => {
            diag.warn("afd", format!("AFD endpoints not walked: {e}"));
            return None;
        }
    };
    let e = &layout.endpoint;
    let (links, end) = walk_list(target, head, MAX_AFD_ENDPOINTS, "AFD endpoint list", diag);
    if end == crate::walk::ListEnd::Interrupted {
        diag.warn("interrupted", "AFD endpoint list walk interrupted");
    }
    let mut out = AfdScan::default();
    for link in links {
        let ep = link.wrapping_sub(u64::from(e.list_link.preferred()));
        // The endpoint starts with a USHORT type signature 0xAFDx (GH v1.4).
        let sig_ok = target
            .read_u16(ep + u64::from(e.signature.preferred()))
            .is_ok_and(|s| s & e.signature_mask == e.signature_mask);
        if !sig_ok {
            diag.warn(
                "afd-signature",
                format!("AFD endpoint {ep:#x} lacks the 0xAFDx signature"),
            );
            continue;
        }
        out.endpoints += 1;
        let owner = e.owner.candidates.iter().find_map(|&off| {
            let p = target.read_u64(ep + u64::from(off)).ok()?;
            procs.resolve(target, p).map(|p| p.pid)
        });
        match owner {
            Some(pid) => *out.by_pid.entry(pid).or_insert(0) += 1,
            None => out.unknown_owner += 1,
        }
    }
    Some(out)
}
