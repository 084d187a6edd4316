//! From a target to the answer: who holds the ports, how much of the range is gone, and why.

pub mod capacity;
pub mod timewait;
pub mod verdict;

use crate::afd::{self, AfdScan};
use crate::diag::{Diagnostics, WarningGroup};
use crate::kernel::{self, Clock, EprocessOffsets, OsVersion, Process, Processes};
use crate::model::{Endpoint, Owner, Protocol, TcpState};
use crate::target::{ModuleInfo, Target};
use crate::tcpip;
use capacity::{Capacity, OwnerSummary, PortRange, RemoteCount};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use timewait::{FixStatus, TimeWaitAging};
use verdict::{Finding, Verdict};

/// Version of the JSON document [`Analysis`] serialises to (docs/JSON.md).
pub const SCHEMA_VERSION: u32 = 1;

/// What the user can set.
#[derive(Debug, Clone)]
pub struct Options {
    /// The dynamic port range (TCP and UDP) when the machine's is not the build default.
    pub dynamic_range: Option<PortRange>,
    /// TcpTimedWaitDelay in seconds when the machine's is not the default.
    pub time_wait_delay: Option<u32>,
    /// How many owners and remote endpoints the report lists.
    pub top: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            dynamic_range: None,
            time_wait_delay: None,
            top: 10,
        }
    }
}

/// A module the analysis depends on, as found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleFacts {
    pub name: String,
    #[serde(serialize_with = "crate::model::hex")]
    pub base: u64,
    pub size: u32,
    pub timestamp: u32,
    pub file_version: Option<String>,
}

impl From<&ModuleInfo> for ModuleFacts {
    fn from(m: &ModuleInfo) -> Self {
        Self {
            name: m.image_name.clone(),
            base: m.base,
            size: m.size,
            timestamp: m.timestamp,
            file_version: m
                .file_version
                .map(|v| format!("{}.{}.{}.{}", v[0], v[1], v[2], v[3])),
        }
    }
}

/// The system the dump came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SystemFacts {
    pub target: String,
    pub os: Option<OsVersion>,
    pub product: String,
    pub clock: Clock,
    pub kernel: Option<ModuleFacts>,
    pub tcpip: Option<ModuleFacts>,
    pub afd: Option<ModuleFacts>,
    /// Which built-in tcpip layout was used and how it was matched.
    pub tcpip_layout: Option<String>,
}

/// Counts of TCP endpoints by state, and UDP.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StateCounts {
    pub tcp: BTreeMap<String, u64>,
    pub udp: u64,
    pub total: u64,
}

/// The whole answer. Serialises to the documented JSON schema.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    pub schema_version: u32,
    pub portleak_version: String,
    pub system: SystemFacts,
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
    pub capacity: Vec<Capacity>,
    pub states: StateCounts,
    pub owners: Vec<OwnerSummary>,
    pub remotes: Vec<RemoteCount>,
    /// Remote endpoints grouped by network (IPv4 /24, IPv6 /64) and port.
    pub remote_networks: Vec<RemoteCount>,
    pub time_wait: TimeWaitAging,
    pub afd: Option<AfdScan>,
    pub next_steps: Vec<String>,
    pub processes: Vec<Process>,
    pub endpoints: Vec<Endpoint>,
    pub warnings: Vec<WarningGroup>,
    pub notes: Vec<String>,
    /// True when the walk stopped early (Ctrl+Break in the debugger): counts are partial.
    pub partial: bool,
}

/// Runs every walker and every rule.
pub fn analyze(target: &dyn Target, opts: &Options) -> Analysis {
    let mut diag = Diagnostics::new();
    let modules = target.modules().unwrap_or_else(|e| {
        diag.warn("modules", format!("module list unavailable: {e}"));
        Vec::new()
    });
    let module = |name: &str| modules.iter().find(|m| m.name.eq_ignore_ascii_case(name));
    let os = kernel::read_version(target, &modules, &mut diag);
    let clock = kernel::read_clock(target, &mut diag);
    let build = os.as_ref().map(|o| o.build);

    let nt_layout = build.and_then(|b| symbols::layouts::nt(b).ok());
    let fallback = |ty: &str, field: &str| -> Option<u64> {
        let e = &nt_layout.as_ref()?.eprocess;
        let off = match (ty, field) {
            ("_EPROCESS", "UniqueProcessId") => &e.unique_process_id,
            ("_EPROCESS", "ActiveProcessLinks") => &e.active_process_links,
            ("_EPROCESS", "CreateTime") => &e.create_time,
            ("_EPROCESS", "ExitTime") => &e.exit_time,
            ("_EPROCESS", "ImageFileName") => &e.image_file_name,
            ("_EPROCESS", "InheritedFromUniqueProcessId") => &e.inherited_from_unique_process_id,
            _ => return None,
        };
        Some(u64::from(off.preferred()))
    };
    let mut procs = match EprocessOffsets::resolve(target, &fallback, &mut diag) {
        Ok(o) => Processes::walk(target, o, &mut diag),
        Err(e) => {
            diag.warn("no-process-list", format!("processes not walked: {e}"));
            Processes::default()
        }
    };

    let tcpip_mod = module("tcpip");
    let mut scan = tcpip::TcpipScan::default();
    let mut layout_note = None;
    match build.map(|b| symbols::layouts::tcpip(b, tcpip_mod.and_then(|m| m.file_version))) {
        Some(Ok(layout)) => {
            layout_note = Some(layout.matched.to_string());
            scan = tcpip::scan(target, tcpip_mod, &layout, &mut procs, &mut diag);
        }
        Some(Err(e)) => diag.warn("tcpip-layout", e.to_string()),
        None => diag.warn("tcpip-layout", "tcpip not walked: the OS build is unknown"),
    }
    let afd = build
        .and_then(|b| symbols::layouts::afd(b).ok())
        .and_then(|l| afd::scan(target, &l, &mut procs, &mut diag));
    let mut endpoints = scan.endpoints;
    infer_time_wait_owners(&mut endpoints);
    endpoints.sort_by(|a, b| {
        (a.protocol, a.local_port, a.object).cmp(&(b.protocol, b.local_port, b.object))
    });

    let (range, range_source) = match opts.dynamic_range {
        Some(r) => (r, "override"),
        None if os.as_ref().is_some_and(|o| o.major < 6) => {
            (PortRange::DEFAULT_NT5, "build default")
        }
        None => (PortRange::DEFAULT_NT6, "build default"),
    };
    let capacity = vec![
        capacity::capacity(
            Protocol::Tcp,
            range,
            range_source,
            &endpoints,
            scan.tcp_ports.as_ref(),
        ),
        capacity::capacity(
            Protocol::Udp,
            range,
            range_source,
            &endpoints,
            scan.udp_ports.as_ref(),
        ),
    ];
    let exited: HashSet<u64> = procs
        .all()
        .iter()
        .filter(|p| p.exit_time.is_some() || !p.on_active_list)
        .map(|p| p.eprocess)
        .collect();
    let is_exited =
        |o: &Owner| matches!(o, Owner::Process { eprocess, .. } if exited.contains(eprocess));
    let owners = capacity::owners(&endpoints, range, range, &is_exited, opts.top);
    let remotes = capacity::top_remotes(endpoints.iter(), opts.top);
    let remote_networks = capacity::top_remote_networks(endpoints.iter(), 5);
    let time_wait = timewait::age_time_wait(
        &endpoints,
        clock.system_time,
        clock.uptime_100ns,
        opts.time_wait_delay,
    );
    let tcpip_version = tcpip_mod.and_then(|m| m.file_version);
    let fix = os.as_ref().map_or(FixStatus::Unknown, |o| {
        timewait::fix_status(o.major, o.minor, tcpip_version)
    });
    let inputs = verdict::Inputs {
        capacity: &capacity,
        owners: &owners,
        aging: &time_wait,
        uptime_100ns: clock.uptime_100ns,
        nt6_0_or_6_1: os.as_ref().is_some_and(OsVersion::is_nt6_0_or_6_1),
        fix,
        tcpip_version,
    };
    let findings = verdict::findings(&inputs);
    let verdict = verdict::verdict(&inputs, &findings);
    let next_steps = verdict::next_steps(verdict.level, &findings);

    let mut states = StateCounts::default();
    for e in &endpoints {
        match e.state {
            Some(s) => *states.tcp.entry(s.name().to_string()).or_insert(0) += 1,
            None => states.udp += 1,
        }
        states.total += 1;
    }
    let partial = diag.count("interrupted") > 0;
    let product = os.as_ref().map_or("unknown Windows".into(), |o| {
        o.product_name(clock.is_server()).to_string()
    });
    Analysis {
        schema_version: SCHEMA_VERSION,
        portleak_version: env!("CARGO_PKG_VERSION").to_string(),
        system: SystemFacts {
            target: target.describe(),
            os,
            product,
            clock,
            kernel: module("nt").map(Into::into),
            tcpip: tcpip_mod.map(Into::into),
            afd: module("afd").map(Into::into),
            tcpip_layout: layout_note,
        },
        verdict,
        findings,
        capacity,
        states,
        owners,
        remotes,
        remote_networks,
        time_wait,
        afd,
        next_steps,
        processes: procs.all().to_vec(),
        endpoints,
        warnings: diag.groups(),
        notes: diag.notes().to_vec(),
        partial,
    }
}

/// TIME_WAIT entries keep no owner (tcpip-afd-facts 2.4). When every owned connection to a remote
/// ip:port belongs to one process, the TIME_WAIT entries to that remote are most likely that
/// process's closed connections: attribute them, marked as inferred.
fn infer_time_wait_owners(endpoints: &mut [Endpoint]) {
    let mut by_remote: HashMap<(std::net::IpAddr, u16), HashSet<&Owner>> = HashMap::new();
    for e in endpoints
        .iter()
        .filter(|e| e.state != Some(TcpState::TimeWait))
    {
        if let (Some(ip), Some(port), Owner::Process { .. } | Owner::Kernel { .. }) =
            (e.remote_ip, e.remote_port, &e.owner)
        {
            by_remote.entry((ip, port)).or_default().insert(&e.owner);
        }
    }
    let unique: HashMap<(std::net::IpAddr, u16), Owner> = by_remote
        .into_iter()
        .filter(|(_, o)| o.len() == 1)
        .filter_map(|(k, o)| o.into_iter().next().map(|o| (k, o.clone())))
        .collect();
    for e in endpoints
        .iter_mut()
        .filter(|e| e.state == Some(TcpState::TimeWait) && e.owner == Owner::Unattributed)
    {
        if let Some(o) = e.remote_ip.zip(e.remote_port).and_then(|k| unique.get(&k)) {
            e.owner = o.clone();
            e.owner_source = "inferred-remote";
        }
    }
}
