//! The ground truth of a built dump: what was placed where, and the verdicts that follow from it.
//!
//! Everything here is derived from the placed objects, not copied from the scenario; only
//! `intended` repeats what the scenario author meant, so a test can compare the two.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::gen::{Ep, Kind};
use crate::scenario::{Expect, Scenario};

/// Share of the dynamic range in use at or above which the range is "exhausted".
pub const EXHAUSTED_AT: f64 = 0.98;
/// Share at or above which the range is "at_risk".
pub const AT_RISK_AT: f64 = 0.75;
/// 2^32 ticks of 10 ms in seconds: uptime past which KB2553549's TIME_WAIT bug bites (facts 3.1).
pub const WRAP_SECS: f64 = 42_949_672.96;
/// tcpip.sys revision of Windows 7 / 2008 R2 SP1 RTM (6.1.7601.17514), released before
/// KB2553549; any revision up to it is certainly unfixed. Later fixed revisions are not public
/// (facts gap 2), so newer revisions count as "not known vulnerable".
pub const SP1_RTM_REVISION: u16 = 17514;
/// TIME_WAIT lasts 2*MSL = 240 s at most (facts 3.1, TcpTimedWaitDelay range up to 300 s);
/// an entry older than 300 s has outlived any setting.
pub const STALE_TIME_WAIT_SECS: u64 = 300;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Truth {
    pub scenario: String,
    pub build: u32,
    pub dump_type: u32,
    /// FILETIME of the dump.
    pub system_time: u64,
    pub uptime_secs: u64,
    pub dtb: u64,
    pub modules: Vec<TruthModule>,
    pub processes: Vec<TruthProcess>,
    pub endpoints: Vec<TruthEndpoint>,
    /// Owner pid (owner pointer, else AFD endpoint; "unowned" for neither) -> state -> count.
    /// UDP endpoints count under the state "UDP".
    pub counts: BTreeMap<String, BTreeMap<String, u64>>,
    pub dynamic_range: RangeUse,
    pub derived: Verdicts,
    pub intended: Expect,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TruthModule {
    pub name: String,
    pub base: u64,
    pub size: u32,
    pub file_version: Option<[u16; 4]>,
    pub pdb_guid_age: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TruthProcess {
    pub pid: u32,
    pub ppid: u32,
    pub image: String,
    pub eprocess: u64,
    pub create_time: u64,
    pub exit_time: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TruthEndpoint {
    /// "TCP" or "UDP".
    pub proto: String,
    /// netstat name (BOUND for a CLOSED TCB with no remote); UDP has none.
    pub state: Option<String>,
    /// 4 or 6.
    pub af: u8,
    pub local_ip: String,
    pub local_port: u16,
    pub remote_ip: Option<String>,
    pub remote_port: Option<u16>,
    /// Pid the object's own owner pointer names (none for TIME_WAIT: the field does not exist).
    pub owner_pid: Option<u32>,
    /// Pid an AFD endpoint attributes it to (the socket is open), if any.
    pub afd_pid: Option<u32>,
    /// Opened by a kernel-mode client (owner is System, no AFD endpoint).
    pub kernel: bool,
    pub va: u64,
    pub pool_tag: String,
    pub afd_va: Option<u64>,
    /// FILETIME written in the object (create time; TIME_WAIT entry time).
    pub time: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RangeUse {
    pub start: u16,
    pub end: u16,
    pub size: u32,
    /// Distinct local TCP ports inside the range held by any TCP object (incl. TIME_WAIT).
    pub tcp_in_use: u32,
    pub udp_in_use: u32,
    pub tcp_share: f64,
    /// The TCP ports in use inside the range, as inclusive runs [first, last].
    pub tcp_ports: Vec<[u16; 2]>,
}

fn runs(ports: &BTreeSet<u16>) -> Vec<[u16; 2]> {
    let mut out: Vec<[u16; 2]> = Vec::new();
    for &p in ports {
        match out.last_mut() {
            Some(r) if u32::from(r[1]) + 1 == u32::from(p) => r[1] = p,
            _ => out.push([p, p]),
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Verdicts {
    /// "exhausted", "at_risk" or "healthy" (TCP share against [`EXHAUSTED_AT`]/[`AT_RISK_AT`]).
    pub range: String,
    pub bug_497: bool,
    /// Kernel-owned endpoints (System / WSK clients) hold ports inside the dynamic range.
    pub kernel_owned: bool,
    /// Pid holding the most endpoints (ties: lowest pid).
    pub top_pid: Option<u32>,
    pub time_wait: u64,
    pub stale_time_wait: u64,
}

impl Verdicts {
    /// Differences between the scenario's intention and these derived verdicts, as prose.
    pub fn mismatches(&self, e: &Expect) -> Vec<String> {
        let mut m = Vec::new();
        if let Some(r) = &e.range {
            if *r != self.range {
                m.push(format!(
                    "range: scenario intends {r}, placed endpoints give {}",
                    self.range
                ));
            }
        }
        if e.bug_497.is_some_and(|b| b != self.bug_497) {
            m.push(format!(
                "497-day bug: scenario intends {:?}, derived {}",
                e.bug_497, self.bug_497
            ));
        }
        if e.kernel_owned.is_some_and(|b| b != self.kernel_owned) {
            m.push(format!(
                "kernel-owned: scenario intends {:?}, derived {}",
                e.kernel_owned, self.kernel_owned
            ));
        }
        if e.top_pid.is_some() && e.top_pid != self.top_pid {
            m.push(format!(
                "top pid: scenario intends {:?}, derived {:?}",
                e.top_pid, self.top_pid
            ));
        }
        m
    }
}

/// Builds the endpoint records from the expanded endpoints and where they landed.
pub fn endpoints(eps: &[Ep], placed: &[(u64, [u8; 4], Option<u64>, u64)]) -> Vec<TruthEndpoint> {
    eps.iter()
        .zip(placed)
        .map(|(e, &(va, tag, afd, time))| TruthEndpoint {
            proto: if e.kind == Kind::Udp { "UDP" } else { "TCP" }.into(),
            state: (e.kind != Kind::Udp).then(|| e.state.name().to_string()),
            af: if e.local.is_ipv6() { 6 } else { 4 },
            local_ip: e.local.ip().to_string(),
            local_port: e.local.port(),
            remote_ip: e.remote.map(|r| r.ip().to_string()),
            remote_port: e.remote.map(|r| r.port()),
            owner_pid: if e.kind == Kind::TimeWait {
                None
            } else {
                e.pid
            },
            afd_pid: afd.and(e.pid),
            kernel: e.kernel,
            va,
            pool_tag: String::from_utf8_lossy(&tag).into_owned(),
            afd_va: afd,
            time,
        })
        .collect()
}

/// Derives counts, range use and verdicts from the placed endpoints.
pub fn derive(
    s: &Scenario,
    tcpip_version: Option<[u16; 4]>,
    eps: &[TruthEndpoint],
    range: (u16, u16),
) -> (BTreeMap<String, BTreeMap<String, u64>>, RangeUse, Verdicts) {
    let mut counts: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut per_pid: BTreeMap<u32, u64> = BTreeMap::new();
    let mut tcp_ports = BTreeSet::new();
    let mut udp_ports = BTreeSet::new();
    let (mut tw, mut stale) = (0, 0);
    let now = crate::unix_to_filetime(s.system.system_time_unix);
    for e in eps {
        let pid = e.owner_pid.or(e.afd_pid);
        let key = pid.map_or_else(|| "unowned".to_string(), |p| p.to_string());
        let state = e.state.clone().unwrap_or_else(|| "UDP".into());
        *counts.entry(key).or_default().entry(state).or_default() += 1;
        if let Some(p) = pid {
            *per_pid.entry(p).or_default() += 1;
        }
        let in_range = (range.0..=range.1).contains(&e.local_port);
        if e.proto == "TCP" && in_range {
            tcp_ports.insert(e.local_port);
        }
        if e.proto == "UDP" && in_range {
            udp_ports.insert(e.local_port);
        }
        if e.state.as_deref() == Some("TIME_WAIT") {
            tw += 1;
            if now.saturating_sub(e.time) > STALE_TIME_WAIT_SECS * 10_000_000 {
                stale += 1;
            }
        }
    }
    let size = u32::from(range.1 - range.0) + 1;
    let share = tcp_ports.len() as f64 / f64::from(size);
    let use_ = RangeUse {
        start: range.0,
        end: range.1,
        size,
        tcp_in_use: tcp_ports.len() as u32,
        udp_in_use: udp_ports.len() as u32,
        tcp_share: share,
        tcp_ports: runs(&tcp_ports),
    };
    let range_verdict = if share >= EXHAUSTED_AT {
        "exhausted"
    } else if share >= AT_RISK_AT {
        "at_risk"
    } else {
        "healthy"
    };
    let (major, minor) = crate::kernel::version_of(s.system.build);
    let vulnerable_os = major == 6 && minor <= 1;
    let unfixed = tcpip_version.is_some_and(|v| v[0] == 6 && v[1] <= 1 && v[3] <= SP1_RTM_REVISION);
    let wrapped = s.system.uptime_secs as f64 >= WRAP_SECS;
    let bug = vulnerable_os && unfixed && wrapped && stale > 0;
    let top = per_pid
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(&p, _)| p);
    let v = Verdicts {
        range: range_verdict.into(),
        bug_497: bug,
        kernel_owned: eps.iter().any(|e| {
            (e.kernel || e.owner_pid == Some(4)) && (range.0..=range.1).contains(&e.local_port)
        }),
        top_pid: top,
        time_wait: tw,
        stale_time_wait: stale,
    };
    (counts, use_, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_runs_coalesce() {
        let s: BTreeSet<u16> = [1, 2, 3, 7, 9, 10, 65535].into_iter().collect();
        assert_eq!(runs(&s), vec![[1, 3], [7, 7], [9, 10], [65535, 65535]]);
    }

    #[test]
    fn mismatches_name_each_difference() {
        let v = Verdicts {
            range: "healthy".into(),
            bug_497: false,
            kernel_owned: true,
            top_pid: Some(4),
            time_wait: 0,
            stale_time_wait: 0,
        };
        let e = Expect {
            range: Some("exhausted".into()),
            bug_497: Some(false),
            kernel_owned: Some(false),
            top_pid: Some(4),
        };
        let m = v.mismatches(&e);
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(m[0].contains("range") && m[1].contains("kernel-owned"));
    }
}
