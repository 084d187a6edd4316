//! The `portleak` binary end to end: report, endpoints with filters, triage of several dumps
//! (parsing each PDB once), and clear failures on bad input.

mod common;

use std::process::Command;

fn portleak(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portleak"))
        .args(args)
        .output()
        .expect("run portleak");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn build_in(name: &str, dir: &std::path::Path) -> synth::Built {
    let s = synth::Scenario::from_toml(synth::scenarios::get(name).unwrap()).unwrap();
    synth::build(&s, dir).unwrap()
}

#[test]
fn report_and_filtered_endpoints() {
    let (b, dir) = common::build("d-win10-close-wait", "cli-report");
    let dump = b.dump.to_str().unwrap();
    let sym = format!("srv*{}", b.symbols_dir.display());
    let (ok, out, err) = portleak(&["report", dump, "--symbols", &sym]);
    assert!(ok, "{err}");
    assert!(
        out.contains("VERDICT: HEALTHY") && out.contains("node.exe"),
        "{out}"
    );

    let want = b
        .truth_data
        .endpoints
        .iter()
        .filter(|e| e.state.as_deref() == Some("CLOSE_WAIT"))
        .count();
    let (ok, csv, err) = portleak(&[
        "endpoints",
        dump,
        "--symbols",
        &sym,
        "--state",
        "close_wait",
        "--csv",
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        csv.lines().count() - 1,
        want,
        "CSV rows (minus header) = CLOSE_WAIT endpoints placed"
    );
    assert!(csv.lines().skip(1).all(|l| l.contains(",CLOSE_WAIT,")));

    let (ok, text, _) = portleak(&[
        "endpoints",
        dump,
        "--symbols",
        &sym,
        "--process",
        "node",
        "--proto",
        "tcp",
    ]);
    assert!(ok);
    assert!(text
        .lines()
        .filter(|l| l.contains("TCP"))
        .all(|l| l.contains("node.exe")));

    let (ok, _, err) = portleak(&["endpoints", dump, "--state", "NOPE"]);
    assert!(!ok && err.contains("is not a TCP state"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn triage_shares_parsed_pdbs_across_dumps() {
    let dir = common::temp_dir("cli-triage");
    let one = build_in("e-win11-healthy", &dir.join("one"));
    let two = build_in("e-win11-healthy", &dir.join("two"));
    std::fs::write(dir.join("junk.dmp"), b"not a dump at all").unwrap();
    let sym = format!(
        "srv*{};srv*{}",
        one.symbols_dir.display(),
        two.symbols_dir.display()
    );
    let (ok, out, err) = portleak(&[
        "triage",
        dir.to_str().unwrap(),
        "--symbols",
        &sym,
        "--json",
        "--jobs",
        "2",
    ]);
    assert!(ok, "{err}");
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows.iter().filter(|r| r["verdict"] == "HEALTHY").count(), 2);
    let junk = rows
        .iter()
        .find(|r| r["dump"].as_str().unwrap().ends_with("junk.dmp"))
        .unwrap();
    assert_eq!(junk["ok"], false);
    assert!(junk["error"].as_str().unwrap().len() > 10);
    // Two dumps of one build: ntkrnlmp, tcpip and afd PDBs are parsed once each.
    assert!(err.contains("PDBs parsed 3 times"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let (ok, _, err) = portleak(&["report", "/nonexistent/MEMORY.DMP"]);
    assert!(!ok);
    assert!(err.contains("/nonexistent/MEMORY.DMP"), "{err}");
}
