//! The verdict (exhausted / at risk / healthy), the findings behind it, and what to do next.
//!
//! Rules, in order of evidence (docs/USER-GUIDE.md explains them to users):
//! - exhausted: a protocol's dynamic range has at most 1% (and no more than 64 ports) left;
//! - at risk: 80% or more of a range is held, or one leak signature (BOUND, CLOSE_WAIT,
//!   kernel-owned, or overdue TIME_WAIT past the 497-day wrap) holds a quarter of a range;
//! - healthy otherwise. Many TIME_WAIT entries alone are normal on a busy client and never raise
//!   the level by themselves: they need saturation or a wrapped clock to matter.

use super::capacity::{Capacity, OwnerSummary};
use super::timewait::{FixStatus, TimeWaitAging, CHIMNEY_100NS, WRAP_100NS};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Healthy,
    AtRisk,
    Exhausted,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Healthy => "HEALTHY",
            Level::AtRisk => "AT RISK",
            Level::Exhausted => "EXHAUSTED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// One thing the analysis concluded, with its evidence and remedy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable identifier: `port-exhaustion`, `bug-497-day`, `chimney-248-day`, `kernel-owned-ports`,
    /// `bound-sockets`, `close-wait-pileup`, `time-wait-overdue`, `exited-owner`.
    pub id: &'static str,
    pub severity: Severity,
    pub title: String,
    pub evidence: Vec<String>,
    pub remedy: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub level: Level,
    pub headline: String,
    pub evidence: Vec<String>,
}

/// Facts the rules read.
pub struct Inputs<'a> {
    pub capacity: &'a [Capacity],
    pub owners: &'a [OwnerSummary],
    pub aging: &'a TimeWaitAging,
    pub uptime_100ns: Option<u64>,
    pub nt6_0_or_6_1: bool,
    pub fix: FixStatus,
    pub tcpip_version: Option<[u16; 4]>,
}

/// Share of a range a single leak signature must hold to raise "at risk".
const SIGNATURE_SHARE: f64 = 0.25;
/// CLOSE_WAIT connections one process may hold before it is called a socket leak: a healthy
/// server closes within seconds of the peer's FIN, so hundreds standing at once are a leak.
const CLOSE_WAIT_ALERT: u64 = 500;

fn ver(v: Option<[u16; 4]>) -> String {
    v.map_or("unknown".into(), |v| {
        format!("{}.{}.{}.{}", v[0], v[1], v[2], v[3])
    })
}

fn days(t100ns: u64) -> String {
    format!("{:.1} days", t100ns as f64 / 1e7 / 86_400.0)
}

pub fn findings(i: &Inputs<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for c in i.capacity {
        let state = |s: &str| c.by_state.get(s).copied().unwrap_or(0);
        let share = |n: u32| f64::from(n) / f64::from(c.range.count.max(1));
        let range = format!("{} {}-{}", c.protocol, c.range.start, c.range.end());
        if is_exhausted(c) {
            out.push(Finding {
                id: "port-exhaustion",
                severity: Severity::Critical,
                title: format!("{} dynamic port range exhausted", c.protocol),
                evidence: vec![format!(
                    "{} of {} ports of {range} in use ({:.1}%), {} free",
                    c.in_use, c.range.count, c.percent_used, c.free
                )],
                remedy: vec![],
            });
        }
        let bound = state("BOUND");
        if share(bound) >= SIGNATURE_SHARE {
            out.push(Finding {
                id: "bound-sockets",
                severity: Severity::Warning,
                title: format!("{bound} ports held by BOUND sockets (bound, never connected)"),
                evidence: vec![format!("{bound} ports of {range} belong to TCBs in CLOSED with a local port and no peer")],
                remedy: vec![
                    "The application calls bind() (often bind to port 0 before connect) and never connects or closes: fix the socket lifetime in the application.".into(),
                    "Live check: netstat -anoq | findstr BOUND, or Get-NetTCPConnection -State Bound | Group-Object OwningProcess".into(),
                ],
            });
        }
        if c.kernel_in_use > 0 && share(c.kernel_in_use) >= SIGNATURE_SHARE / 5.0 {
            out.push(Finding {
                id: "kernel-owned-ports",
                severity: if share(c.kernel_in_use) >= SIGNATURE_SHARE { Severity::Critical } else { Severity::Warning },
                title: format!("{} ports held by kernel-owned endpoints (System, pid 4)", c.kernel_in_use),
                evidence: vec![format!("endpoints owned by the System process hold {} ports of {range}: a kernel-mode client (WSK driver, SMB, HTTP.sys, a filter driver) suspected of leaking them", c.kernel_in_use)],
                remedy: vec![
                    "Find the driver: !pool / !poolfind on the endpoint objects, lm to list third-party network drivers, and compare with a healthy machine.".into(),
                    "Update or remove the suspected WSK client driver; the ports return only when it closes its sockets or the machine restarts.".into(),
                ],
            });
        }
    }
    if let Some(up) = i.uptime_100ns {
        if i.nt6_0_or_6_1 && up >= WRAP_100NS && i.fix != FixStatus::NotAffectedOs {
            let mut evidence = vec![
                format!("uptime {} is past 2^32 x 10 ms = 497.1 days", days(up)),
                format!(
                    "tcpip.sys {} ({})",
                    ver(i.tcpip_version),
                    match i.fix {
                        FixStatus::Unfixed => "a build released before the fix",
                        _ => "could not be placed relative to the fix by version",
                    }
                ),
            ];
            if i.aging.overdue > 0 {
                evidence.push(format!(
                    "{} TIME_WAIT entries are older than TcpTimedWaitDelay ({} s); the oldest is {}",
                    i.aging.overdue,
                    i.aging.delay_secs,
                    i.aging.oldest_age_secs.map_or("unknown".into(), |s| format!("{:.1} days old", s as f64 / 86_400.0))
                ));
            }
            let observed = i.aging.overdue > 0 || i.aging.with_time == 0 && i.aging.count > 0;
            let certain = i.fix == FixStatus::Unfixed && observed;
            out.push(Finding {
                id: "bug-497-day",
                severity: if certain { Severity::Critical } else { Severity::Warning },
                title: if certain {
                    "Windows 497-day bug (KB2553549): TIME_WAIT connections are no longer reaped".into()
                } else {
                    "Possible Windows 497-day bug (KB2553549)".into()
                },
                evidence,
                remedy: vec![
                    "Restart the server now to reset the tick counter (it frees every stuck TIME_WAIT port).".into(),
                    "Install KB2553549 or any later tcpip.sys update (it carries the fix), then keep tcpip.sys current.".into(),
                ],
            });
        }
        if i.nt6_0_or_6_1 && up >= CHIMNEY_100NS && i.fix != FixStatus::NotAffectedOs {
            out.push(Finding {
                id: "chimney-248-day",
                severity: Severity::Info,
                title: "Uptime is past 248.5 days: TCP Chimney offload fails on unfixed NT 6.0/6.1".into(),
                evidence: vec![format!("uptime {} >= 2^31 x 10 ms", days(up))],
                remedy: vec!["netsh int tcp set global chimney=disabled (or install KB2553549) if offload-capable NICs are in use.".into()],
            });
        }
    }
    if i.aging.overdue > 0 && !out.iter().any(|f| f.id == "bug-497-day") {
        out.push(Finding {
            id: "time-wait-overdue",
            severity: Severity::Warning,
            title: format!("{} TIME_WAIT entries older than TcpTimedWaitDelay", i.aging.overdue),
            evidence: vec![format!("delay {} s ({}); oldest {} s", i.aging.delay_secs, i.aging.delay_source, i.aging.oldest_age_secs.unwrap_or(0))],
            remedy: vec!["tcpip is not reaping TIME_WAIT entries on time; check the delay actually configured (TcpTimedWaitDelay) and look for a tcpip.sys update.".into()],
        });
    }
    for o in i.owners {
        let n = o.tcp_by_state.get("CLOSE_WAIT").copied().unwrap_or(0);
        if n < CLOSE_WAIT_ALERT {
            continue;
        }
        let in_range = i
            .capacity
            .first()
            .and_then(|c| c.by_state.get("CLOSE_WAIT"))
            .copied()
            .unwrap_or(0);
        let range = i.capacity.first().map_or(1, |c| c.range.count.max(1));
        out.push(Finding {
            id: "close-wait-pileup",
            severity: if f64::from(in_range) / f64::from(range) >= SIGNATURE_SHARE { Severity::Critical } else { Severity::Warning },
            title: format!("{} (pid {}) holds {n} connections in CLOSE_WAIT", o.owner.image(), o.owner.pid().map_or("-".into(), |p| p.to_string())),
            evidence: vec![
                "the peers closed these connections and the application never called closesocket(): CLOSE_WAIT never times out".into(),
                format!("{in_range} CLOSE_WAIT entries (all owners) sit on TCP dynamic ports"),
            ],
            remedy: vec!["Fix the application's close path (it leaks a socket per closed connection); restarting it frees the sockets and ports.".into()],
        });
    }
    let exited: Vec<&OwnerSummary> = i
        .owners
        .iter()
        .filter(|o| o.exited && o.total > 0)
        .collect();
    if !exited.is_empty() {
        out.push(Finding {
            id: "exited-owner",
            severity: Severity::Warning,
            title: format!("{} exited process(es) still hold endpoints", exited.len()),
            evidence: exited.iter().map(|o| format!("{} (pid {}) holds {} endpoints", o.owner.image(), o.owner.pid().unwrap_or(0), o.total)).collect(),
            remedy: vec!["A process that has exited but whose sockets stay open is kept alive by a handle or reference leak (often a kernel driver or a handle held by another process).".into()],
        });
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}

fn is_exhausted(c: &Capacity) -> bool {
    let margin = (c.range.count / 100).min(64);
    c.free <= margin
}

pub fn verdict(i: &Inputs<'_>, findings: &[Finding]) -> Verdict {
    let mut evidence = Vec::new();
    let mut level = Level::Healthy;
    for c in i.capacity {
        evidence.push(format!(
            "{} dynamic range {}-{} ({}): {} of {} in use ({:.1}%)",
            c.protocol,
            c.range.start,
            c.range.end(),
            c.range_source,
            c.in_use,
            c.range.count,
            c.percent_used
        ));
        if is_exhausted(c) {
            level = level.max(Level::Exhausted);
        } else if c.percent_used >= 80.0 {
            level = level.max(Level::AtRisk);
        }
    }
    let raises = |f: &Finding| {
        matches!(f.severity, Severity::Warning | Severity::Critical)
            && matches!(
                f.id,
                "bound-sockets" | "close-wait-pileup" | "kernel-owned-ports" | "bug-497-day"
            )
    };
    for f in findings.iter().filter(|f| raises(f)) {
        // A CLOSE_WAIT leak on a server port costs sockets, not ephemeral ports: it raises the
        // level only once it holds a quarter of the dynamic range (Critical).
        if f.id != "close-wait-pileup" || f.severity == Severity::Critical {
            level = level.max(Level::AtRisk);
        }
        evidence.push(f.title.clone());
    }
    if i.aging.count > 0 && level == Level::Healthy {
        evidence.push(format!(
            "{} TIME_WAIT entries: normal churn while the range has room",
            i.aging.count
        ));
    }
    let headline = match level {
        Level::Exhausted => {
            let who = i
                .owners
                .first()
                .map(|o| {
                    format!(
                        "; the largest holder is {} (pid {}) with {} dynamic ports",
                        o.owner.image(),
                        o.owner.pid().map_or("-".into(), |p| p.to_string()),
                        o.dynamic_ports
                    )
                })
                .unwrap_or_default();
            format!("The dynamic port range is exhausted: new outbound connections fail{who}")
        }
        Level::AtRisk => "Ports are leaking: the dynamic range is at risk of exhaustion".into(),
        Level::Healthy if findings.iter().any(|f| f.severity >= Severity::Warning) => {
            "No port exhaustion: the dynamic range has room, but see the findings below".into()
        }
        Level::Healthy => {
            "No port exhaustion: the dynamic range has room and no leak signature was found".into()
        }
    };
    Verdict {
        level,
        headline,
        evidence,
    }
}

/// Commands an engineer runs next, most useful first.
pub fn next_steps(level: Level, findings: &[Finding]) -> Vec<String> {
    let mut steps: Vec<String> = findings
        .iter()
        .flat_map(|f| f.remedy.iter().cloned())
        .collect();
    if level != Level::Healthy {
        steps.push("Show the range: netsh int ipv4 show dynamicport tcp (and udp, ipv6)".into());
        steps.push("Widen it while the cause is fixed: netsh int ipv4 set dynamicport tcp start=10000 num=55536".into());
        steps.push("On the live machine: netstat -anobq shows owners and BOUND sockets; Get-NetTCPConnection | Group-Object State, OwningProcess".into());
        steps.push("TIME_WAIT lifetime: HKLM\\SYSTEM\\CurrentControlSet\\Services\\Tcpip\\Parameters TcpTimedWaitDelay (REG_DWORD, 30-300 s, default 240)".into());
    }
    let mut seen = std::collections::HashSet::new();
    steps.retain(|s| seen.insert(s.clone()));
    steps
}
