//! Every scenario under tests/scenarios gives exactly its ground truth: the same processes, the
//! same endpoints (matched by object address, field by field), the intended verdicts; and the
//! text report matches its snapshot (tests/snapshots; refresh with UPDATE_SNAPSHOTS=1).

mod common;

use portleak::analysis::verdict::Level;
use portleak::analysis::{analyze, Analysis, Options};
use portleak::model::{Owner, Protocol, TcpState};
use portleak::offline::OfflineTarget;
use portleak::render::PlainText;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use symbols::SymbolCache;
use synth::{Built, Truth};

fn build_and_analyze(name: &str) -> (Built, Analysis, String) {
    let (built, dir) = common::build(name, name);
    let dump = dumps::Dump::open(&built.dump).expect("dump opens");
    let target = OfflineTarget::new(
        &dump,
        common::symbol_path(&built.symbols_dir),
        Arc::new(SymbolCache::new()),
    );
    assert!(
        target.problems().is_empty(),
        "{name}: symbol/module problems: {:?}",
        target.problems()
    );
    let a = analyze(&target, &Options::default());
    let mut text = PlainText::default();
    portleak::report::report(&a, &mut text);
    let report = text.0.replace(&dir.display().to_string(), "<dir>");
    let _ = std::fs::remove_dir_all(&dir);
    (built, a, report)
}

fn ip(s: &str) -> IpAddr {
    s.trim_matches(|c| c == '[' || c == ']')
        .parse()
        .unwrap_or_else(|e| panic!("truth ip {s}: {e}"))
}

fn check_truth(name: &str, truth: &Truth, a: &Analysis) {
    // Processes: every one placed is found with its image.
    let found: HashMap<u64, &str> = a
        .processes
        .iter()
        .map(|p| (p.pid, p.image.as_str()))
        .collect();
    for p in &truth.processes {
        assert_eq!(
            found.get(&u64::from(p.pid)).copied(),
            Some(p.image.as_str()),
            "{name}: process {} ({})",
            p.pid,
            p.image
        );
    }
    assert_eq!(
        a.processes.len(),
        truth.processes.len(),
        "{name}: process count"
    );

    // Endpoints: one for one by object address.
    let by_va: HashMap<u64, &portleak::model::Endpoint> =
        a.endpoints.iter().map(|e| (e.object, e)).collect();
    let mut missing = Vec::new();
    for t in &truth.endpoints {
        let Some(e) = by_va.get(&t.va) else {
            missing.push(format!(
                "{} {:?} {}:{} at {:#x}",
                t.proto, t.state, t.local_ip, t.local_port, t.va
            ));
            continue;
        };
        let what = format!(
            "{name}: endpoint {:#x} ({} {:?} port {})",
            t.va, t.proto, t.state, t.local_port
        );
        assert_eq!(
            e.protocol,
            if t.proto == "TCP" {
                Protocol::Tcp
            } else {
                Protocol::Udp
            },
            "{what}: protocol"
        );
        assert_eq!(
            e.state,
            t.state
                .as_deref()
                .map(|s| TcpState::parse(s).unwrap_or_else(|| panic!("truth state {s}"))),
            "{what}: state"
        );
        assert_eq!(e.local_port, t.local_port, "{what}: local port");
        assert_eq!(e.local_ip, Some(ip(&t.local_ip)), "{what}: local ip");
        assert_eq!(e.remote_port, t.remote_port, "{what}: remote port");
        assert_eq!(
            e.remote_ip,
            t.remote_ip.as_deref().map(ip),
            "{what}: remote ip"
        );
        match (t.owner_pid, t.kernel) {
            (_, true) => assert!(
                matches!(e.owner, Owner::Kernel { .. }),
                "{what}: kernel owner, got {:?}",
                e.owner
            ),
            (Some(pid), false) => assert_eq!(e.owner.pid(), Some(u64::from(pid)), "{what}: owner"),
            (None, false) => assert!(
                e.owner_source == "none" || e.owner_source == "inferred-remote",
                "{what}: unowned, got {:?}",
                e.owner
            ),
        }
        assert_eq!(e.pool_tag, t.pool_tag, "{what}: pool tag");
    }
    assert!(
        missing.is_empty(),
        "{name}: {} endpoints not found, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(
        a.endpoints.len(),
        truth.endpoints.len(),
        "{name}: endpoints found that were never placed"
    );

    // Capacity: TCP ports in use inside the range.
    let tcp = &a.capacity[0];
    assert_eq!(
        tcp.in_use, truth.dynamic_range.tcp_in_use,
        "{name}: TCP ports in use in the dynamic range"
    );
    assert_eq!(
        a.capacity[1].in_use, truth.dynamic_range.udp_in_use,
        "{name}: UDP ports in use in the dynamic range"
    );

    // Verdicts the scenario intends.
    let e = &truth.intended;
    if let Some(r) = &e.range {
        let want = match r.as_str() {
            "exhausted" => Level::Exhausted,
            "at_risk" => Level::AtRisk,
            _ => Level::Healthy,
        };
        assert_eq!(
            a.verdict.level, want,
            "{name}: verdict ({:?})",
            a.verdict.evidence
        );
    }
    let has = |id: &str| a.findings.iter().any(|f| f.id == id);
    if let Some(b) = e.bug_497 {
        assert_eq!(has("bug-497-day"), b, "{name}: 497-day finding");
    }
    if let Some(k) = e.kernel_owned {
        assert_eq!(has("kernel-owned-ports"), k, "{name}: kernel-owned finding");
    }
    if let Some(pid) = e.top_pid {
        assert_eq!(
            a.owners.first().and_then(|o| o.owner.pid()),
            Some(u64::from(pid)),
            "{name}: top holder"
        );
    }
}

fn check_snapshot(name: &str, report: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, report).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {} (run with UPDATE_SNAPSHOTS=1)",
            path.display()
        )
    });
    if want != report {
        let diff: Vec<String> = want
            .lines()
            .zip(report.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(5)
            .map(|(i, (a, b))| format!("line {}:\n  want {a}\n  got  {b}", i + 1))
            .collect();
        panic!(
            "{name}: report differs from {}:\n{}",
            path.display(),
            diff.join("\n")
        );
    }
}

macro_rules! scenario {
    ($test:ident, $name:literal) => {
        #[test]
        fn $test() {
            let (built, a, report) = build_and_analyze($name);
            check_truth($name, &built.truth_data, &a);
            check_snapshot($name, &report);
        }
    };
}

scenario!(a_2008r2_497_day, "a-2008r2-497-day");
scenario!(b_2019_bound_leak, "b-2019-bound-leak");
scenario!(c_2022_kernel_wsk, "c-2022-kernel-wsk");
scenario!(d_win10_close_wait, "d-win10-close-wait");
scenario!(e_win11_healthy, "e-win11-healthy");
scenario!(f_win10_dual_stack, "f-win10-dual-stack");

#[test]
fn every_embedded_scenario_has_a_test() {
    let names: Vec<&str> = synth::scenarios::all().iter().map(|(n, _)| *n).collect();
    let tested = [
        "a-2008r2-497-day",
        "b-2019-bound-leak",
        "c-2022-kernel-wsk",
        "d-win10-close-wait",
        "e-win11-healthy",
        "f-win10-dual-stack",
    ];
    for n in names {
        assert!(
            tested.contains(&n),
            "scenario {n} has no test in tests/scenarios.rs"
        );
    }
}
