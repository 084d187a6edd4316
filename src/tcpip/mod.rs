//! Walkers of tcpip.sys's endpoint structures.
//!
//! Two roots cover every endpoint (tcpip-afd-facts 2.2, 2.3): the partition table's hash tables
//! hold TCBs in every state and the TIME_WAIT entries; the port pools hold listeners, UDP
//! endpoints and the port bitmap. Objects found from both roots are counted once (by address).

pub mod hash;
pub mod infer;
pub mod obj;
pub mod parse;
pub mod tables;

use crate::analysis::capacity::PortBitmap;
use crate::diag::Diagnostics;
use crate::kernel::Processes;
use crate::model::{Endpoint, Protocol};
use crate::target::{ModuleInfo, Target};
use symbols::layouts::TcpipLayout;

/// What the tcpip walk found.
#[derive(Debug, Default, Clone)]
pub struct TcpipScan {
    pub endpoints: Vec<Endpoint>,
    pub tcp_ports: Option<PortBitmap>,
    pub udp_ports: Option<PortBitmap>,
}

/// Walks the partition tables and both port pools.
/// `module` is tcpip.sys as loaded; without tcpip.pdb its data section is searched for the globals.
pub fn scan(
    target: &dyn Target,
    module: Option<&ModuleInfo>,
    layout: &TcpipLayout,
    procs: &mut Processes,
    diag: &mut Diagnostics,
) -> TcpipScan {
    let globals = infer::globals(target, module, layout, diag);
    let mut p = parse::Parser::new(target, layout, procs, diag);
    p.globals = globals;
    tables::walk_partitions(&mut p);
    // After Ctrl+Break the user wants what there is now, not the next phase.
    let stopped = |p: &parse::Parser<'_>| p.diag.count("interrupted") > 0 || p.target.interrupted();
    let tcp_ports = if stopped(&p) {
        None
    } else {
        tables::walk_port_pool(&mut p, Protocol::Tcp)
    };
    let udp_ports = if stopped(&p) {
        None
    } else {
        tables::walk_port_pool(&mut p, Protocol::Udp)
    };
    TcpipScan {
        endpoints: p.endpoints,
        tcp_ports,
        udp_ports,
    }
}
