//! Rendering an [`Analysis`]: the text report read top-down, the netstat-like endpoint list, the
//! per-process view, JSON and CSV. Text goes through [`Markup`] so the debugger can make pids and
//! addresses clickable while the characters stay those of the CLI.

pub mod table;

use crate::analysis::verdict::Severity;
use crate::analysis::Analysis;
use crate::model::{Endpoint, Owner, Protocol, TcpState};
use crate::render::Markup;
use crate::time;
use table::Cell;

/// The debugger command that drills into a process.
pub fn process_command(pid: u64) -> String {
    format!("!portleak -process {pid}")
}

fn pid_cell(owner: &Owner) -> Cell {
    match owner.pid() {
        Some(pid) => Cell::link(pid.to_string(), process_command(pid)).right(),
        None => Cell::new("-").right(),
    }
}

fn addr(ip: Option<std::net::IpAddr>, port: Option<u16>) -> String {
    let ip = match ip {
        Some(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
        Some(v4) => v4.to_string(),
        None => "?".into(),
    };
    match port {
        Some(p) => format!("{ip}:{p}"),
        None => format!("{ip}:*"),
    }
}

fn heading(out: &mut dyn Markup, s: &str) {
    out.text("\n");
    out.bold(s);
    out.text("\n");
}

/// The full report.
pub fn report(a: &Analysis, out: &mut dyn Markup) {
    out.bold(&format!(
        "portleak {} - who holds the ports",
        a.portleak_version
    ));
    out.text("\n");
    out.text(&format!("Target: {}\n", a.system.target));
    if a.partial {
        out.bold("PARTIAL RESULT: the walk was interrupted; counts below are incomplete.\n");
    }
    system(a, out);
    heading(out, &format!("VERDICT: {}", a.verdict.level.name()));
    out.text(&format!("  {}\n", a.verdict.headline));
    for e in &a.verdict.evidence {
        out.text(&format!("  - {e}\n"));
    }
    findings(a, out);
    capacity(a, out);
    states(a, out);
    owners(a, out);
    remotes(a, out);
    time_wait(a, out);
    afd(a, out);
    if !a.next_steps.is_empty() {
        heading(out, "NEXT STEPS");
        for (i, s) in a.next_steps.iter().enumerate() {
            out.text(&format!("  {}. {s}\n", i + 1));
        }
    }
    diagnostics(a, out);
}

fn system(a: &Analysis, out: &mut dyn Markup) {
    heading(out, "SYSTEM");
    let s = &a.system;
    match &s.os {
        Some(os) => out.text(&format!(
            "  {} (NT {}.{}, build {})\n",
            s.product, os.major, os.minor, os.build
        )),
        None => out.text("  OS version unknown\n"),
    }
    for m in [&s.kernel, &s.tcpip, &s.afd].into_iter().flatten() {
        out.text(&format!(
            "  {:<13} {:<18} at {:#x}\n",
            m.name,
            m.file_version.as_deref().unwrap_or("version unknown"),
            m.base
        ));
    }
    if let Some(l) = &s.tcpip_layout {
        out.text(&format!("  tcpip layout  {l}\n"));
    }
    let c = &s.clock;
    if let Some(t) = c.system_time.and_then(time::filetime_utc) {
        out.text(&format!("  System time   {t}\n"));
    }
    if let Some(u) = c.uptime_secs() {
        out.text(&format!(
            "  Uptime        {} ({} s)\n",
            time::duration(u as u64),
            u as u64
        ));
    }
    let exited = a
        .processes
        .iter()
        .filter(|p| p.exit_time.is_some() || !p.on_active_list)
        .count();
    out.text(&format!(
        "  Processes     {} ({exited} exited or off the active list)\n",
        a.processes.len()
    ));
}

fn findings(a: &Analysis, out: &mut dyn Markup) {
    if a.findings.is_empty() {
        return;
    }
    heading(out, "FINDINGS");
    for f in &a.findings {
        let sev = match f.severity {
            Severity::Critical => "CRITICAL",
            Severity::Warning => "WARNING",
            Severity::Info => "INFO",
        };
        out.bold(&format!("  [{sev}] {}", f.title));
        out.text("\n");
        for e in &f.evidence {
            out.text(&format!("      - {e}\n"));
        }
    }
}

fn capacity(a: &Analysis, out: &mut dyn Markup) {
    heading(out, "DYNAMIC PORT RANGE");
    let rows: Vec<Vec<Cell>> = a
        .capacity
        .iter()
        .map(|c| {
            vec![
                Cell::new(c.protocol.to_string()),
                Cell::new(format!("{}-{}", c.range.start, c.range.end())),
                Cell::new(c.range_source),
                Cell::num(c.in_use),
                Cell::num(c.free),
                Cell::num(format!("{:.1}%", c.percent_used)),
                Cell::new(c.bitmap_in_use.map_or("not read".into(), |n| n.to_string())),
            ]
        })
        .collect();
    table::write(
        out,
        "  ",
        &[
            "Proto",
            "Range",
            "Source",
            "In use",
            "Free",
            "Used",
            "Port bitmap",
        ],
        &rows,
    );
    for c in &a.capacity {
        if c.by_state.is_empty() {
            continue;
        }
        let parts: Vec<String> = c.by_state.iter().map(|(s, n)| format!("{s} {n}")).collect();
        out.text(&format!(
            "  {} ports in range by state: {}\n",
            c.protocol,
            parts.join(", ")
        ));
        if c.kernel_in_use > 0 {
            out.text(&format!(
                "  {} ports in range held by the kernel (System): {}\n",
                c.protocol, c.kernel_in_use
            ));
        }
    }
}

fn states(a: &Analysis, out: &mut dyn Markup) {
    heading(out, "ENDPOINTS BY STATE");
    let mut rows: Vec<Vec<Cell>> = crate::model::ALL_STATES
        .iter()
        .filter_map(|s| {
            a.states
                .tcp
                .get(s.name())
                .map(|n| vec![Cell::new("TCP"), Cell::new(s.name()), Cell::num(n)])
        })
        .collect();
    rows.push(vec![
        Cell::new("UDP"),
        Cell::new(""),
        Cell::num(a.states.udp),
    ]);
    rows.push(vec![
        Cell::new("All"),
        Cell::new(""),
        Cell::num(a.states.total),
    ]);
    table::write(out, "  ", &["Proto", "State", "Count"], &rows);
}

fn owners(a: &Analysis, out: &mut dyn Markup) {
    heading(out, "TOP OWNERS (by dynamic ports held)");
    let top = a.owners.iter().take(10);
    let rows: Vec<Vec<Cell>> = top
        .map(|o| {
            let mut states: Vec<(&String, &u64)> = o.tcp_by_state.iter().collect();
            states.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
            let mut parts: Vec<String> = states
                .iter()
                .take(3)
                .map(|(s, n)| format!("{s} {n}"))
                .collect();
            if o.udp > 0 {
                parts.push(format!("UDP {}", o.udp));
            }
            let mut image = o.owner.image().to_string();
            if o.exited {
                image.push_str(" (exited)");
            }
            vec![
                pid_cell(&o.owner),
                Cell::new(image),
                Cell::num(o.dynamic_ports),
                Cell::num(o.total),
                Cell::new(parts.join(", ")),
            ]
        })
        .collect();
    table::write(
        out,
        "  ",
        &["PID", "Image", "Dyn ports", "Total", "Mostly"],
        &rows,
    );
    if a.endpoints
        .iter()
        .any(|e| e.owner_source == "inferred-remote")
    {
        out.text("  TIME_WAIT entries carry no owner; those to a remote that only one process talks to are counted for that process (inferred).\n");
    }
}

fn remotes(a: &Analysis, out: &mut dyn Markup) {
    if a.remotes.is_empty() {
        return;
    }
    heading(out, "TOP REMOTE NETWORKS (IPv4 /24, IPv6 /64)");
    let rows: Vec<Vec<Cell>> = a
        .remote_networks
        .iter()
        .map(|r| vec![Cell::new(&r.remote), Cell::num(r.count)])
        .collect();
    table::write(out, "  ", &["Remote network", "Count"], &rows);
    heading(out, "TOP REMOTE ENDPOINTS");
    let rows: Vec<Vec<Cell>> = a
        .remotes
        .iter()
        .map(|r| vec![Cell::new(&r.remote), Cell::num(r.count)])
        .collect();
    table::write(out, "  ", &["Remote", "Count"], &rows);
}

fn time_wait(a: &Analysis, out: &mut dyn Markup) {
    let t = &a.time_wait;
    heading(
        out,
        &format!(
            "TIME_WAIT AGING (TcpTimedWaitDelay {} s, {})",
            t.delay_secs, t.delay_source
        ),
    );
    out.text(&format!(
        "  {} entries, {} with a readable timestamp, {} overdue",
        t.count, t.with_time, t.overdue
    ));
    if let Some(o) = t.oldest_age_secs {
        out.text(&format!(", oldest {}", time::age(o)));
    }
    if let Some(m) = t.median_age_secs {
        out.text(&format!(", median {}", time::age(m)));
    }
    out.text("\n");
    if t.with_time > 0 {
        let parts: Vec<String> = t
            .buckets
            .iter()
            .map(|b| format!("{}: {}", b.label, b.count))
            .collect();
        out.text(&format!("  {}\n", parts.join("; ")));
    }
}

fn afd(a: &Analysis, out: &mut dyn Markup) {
    let Some(afd) = &a.afd else { return };
    heading(out, "AFD SOCKETS (afd!AfdEndpointListHead)");
    out.text(&format!("  {} socket endpoints", afd.endpoints));
    if afd.unknown_owner > 0 {
        out.text(&format!(
            ", {} without a resolvable owner",
            afd.unknown_owner
        ));
    }
    out.text("\n");
    let mut by: Vec<(&u64, &u64)> = afd.by_pid.iter().collect();
    by.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
    let rows: Vec<Vec<Cell>> = by
        .into_iter()
        .take(10)
        .map(|(pid, n)| {
            let image = a
                .processes
                .iter()
                .find(|p| p.pid == *pid)
                .map_or("?", |p| p.image.as_str());
            vec![
                Cell::link(pid.to_string(), process_command(*pid)).right(),
                Cell::new(image),
                Cell::num(n),
            ]
        })
        .collect();
    table::write(out, "  ", &["PID", "Image", "Sockets"], &rows);
}

fn diagnostics(a: &Analysis, out: &mut dyn Markup) {
    if !a.warnings.is_empty() {
        heading(
            out,
            "WARNINGS (the dump is incomplete or inconsistent here; results may undercount)",
        );
        for w in &a.warnings {
            out.text(&format!(
                "  {} x{}: {}\n",
                w.kind,
                w.count,
                w.examples.first().map_or("", String::as_str)
            ));
        }
    }
    if !a.notes.is_empty() {
        heading(out, "NOTES");
        for n in &a.notes {
            out.text(&format!("  {n}\n"));
        }
    }
}

/// Which endpoints the endpoint list shows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub pid: Option<u64>,
    pub state: Option<TcpState>,
    pub protocol: Option<Protocol>,
    /// Case-insensitive image name (`java.exe` or `java`).
    pub process: Option<String>,
}

impl Filter {
    pub fn matches(&self, e: &Endpoint) -> bool {
        self.pid.is_none_or(|p| e.owner.pid() == Some(p))
            && self.state.is_none_or(|s| e.state == Some(s))
            && self.protocol.is_none_or(|p| e.protocol == p)
            && self.process.as_ref().is_none_or(|n| {
                let img = e.owner.image().to_ascii_lowercase();
                let n = n.to_ascii_lowercase();
                img == n || img.strip_suffix(".exe") == Some(n.as_str())
            })
    }
}

/// netstat-like list of endpoints.
pub fn endpoints(a: &Analysis, filter: &Filter, out: &mut dyn Markup) {
    let rows: Vec<Vec<Cell>> = a
        .endpoints
        .iter()
        .filter(|e| filter.matches(e))
        .map(|e| {
            let mut image = e.owner.image().to_string();
            if e.owner_source == "inferred-remote" {
                image.push_str(" (inferred)");
            }
            vec![
                Cell::new(e.protocol.to_string()),
                Cell::new(addr(e.local_ip, Some(e.local_port))),
                Cell::new(if e.protocol == Protocol::Udp {
                    "*:*".into()
                } else {
                    addr(e.remote_ip, e.remote_port)
                }),
                Cell::new(e.state_name()),
                pid_cell(&e.owner),
                Cell::new(image),
                Cell::link(format!("{:#x}", e.object), format!("!pool {:#x}", e.object)),
            ]
        })
        .collect();
    let n = rows.len();
    table::write(
        out,
        "  ",
        &[
            "Proto",
            "Local Address",
            "Foreign Address",
            "State",
            "PID",
            "Image",
            "Object",
        ],
        &rows,
    );
    out.text(&format!("  {n} endpoints\n"));
}

/// One process: its facts, its counts, its endpoints.
pub fn process(a: &Analysis, pid: u64, out: &mut dyn Markup) -> bool {
    let Some(p) = a.processes.iter().find(|p| p.pid == pid) else {
        return false;
    };
    out.bold(&format!("Process {} ({})", p.pid, p.image));
    out.text("\n");
    out.text("  EPROCESS ");
    out.link(
        &format!("{:#x}", p.eprocess),
        &format!("dt nt!_EPROCESS {:#x}", p.eprocess),
    );
    out.text("\n");
    if let Some(t) = p.create_time.and_then(time::filetime_utc) {
        out.text(&format!("  Created  {t}\n"));
    }
    if let Some(t) = p.exit_time.and_then(time::filetime_utc) {
        out.text(&format!("  Exited   {t} (its endpoints are still held)\n"));
    }
    if let Some(o) = a.owners.iter().find(|o| o.owner.pid() == Some(pid)) {
        let parts: Vec<String> = o
            .tcp_by_state
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        out.text(&format!(
            "  {} endpoints, {} dynamic ports; TCP {}; UDP {}\n",
            o.total,
            o.dynamic_ports,
            parts.join(", "),
            o.udp
        ));
    }
    endpoints(
        a,
        &Filter {
            pid: Some(pid),
            ..Filter::default()
        },
        out,
    );
    true
}

/// Endpoint rows as CSV (RFC 4180 quoting).
pub fn csv(a: &Analysis) -> String {
    let q = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let mut out = String::from("protocol,state,local_ip,local_port,remote_ip,remote_port,pid,image,owner_source,object,pool_tag,kind,found_via\n");
    for e in &a.endpoints {
        let row = [
            e.protocol.to_string(),
            e.state_name().to_string(),
            e.local_ip.map(|i| i.to_string()).unwrap_or_default(),
            e.local_port.to_string(),
            e.remote_ip.map(|i| i.to_string()).unwrap_or_default(),
            e.remote_port.map(|p| p.to_string()).unwrap_or_default(),
            e.owner.pid().map(|p| p.to_string()).unwrap_or_default(),
            e.owner.image().to_string(),
            e.owner_source.to_string(),
            format!("{:#x}", e.object),
            e.pool_tag.clone(),
            format!("{:?}", e.kind).to_ascii_lowercase(),
            e.found_via.to_string(),
        ];
        out.push_str(&row.iter().map(|c| q(c)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

/// The analysis as pretty JSON (schema in docs/JSON.md).
pub fn json(a: &Analysis) -> String {
    serde_json::to_string_pretty(a).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
