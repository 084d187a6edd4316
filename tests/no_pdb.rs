//! Without tcpip.pdb (and even without any PDB) the walk still finds every tcpip endpoint: tcpip's
//! globals are inferred from its data section and kernel offsets come from the built-in table.
//! The report says so.

mod common;

use portleak::analysis::Analysis;

/// Builds `name`, deletes the PDBs whose file name is in `drop` from its symbol store, analyses.
fn analyze_without(name: &str, drop: &[&str]) -> (synth::Built, Analysis) {
    let (built, dir) = common::build(name, &format!("nopdb-{name}-{}", drop.len()));
    for pdb in drop {
        let _ = std::fs::remove_dir_all(built.symbols_dir.join(pdb));
        assert!(!built.symbols_dir.join(pdb).exists());
    }
    let a = common::analyze_dump(&built.dump, &built.symbols_dir).unwrap();
    let _ = std::fs::remove_dir_all(dir);
    (built, a)
}

fn same_endpoints(built: &synth::Built, a: &Analysis) {
    let mut want: Vec<u64> = built.truth_data.endpoints.iter().map(|e| e.va).collect();
    let mut got: Vec<u64> = a.endpoints.iter().map(|e| e.object).collect();
    want.sort_unstable();
    got.sort_unstable();
    assert_eq!(got.len(), want.len(), "warnings: {:?}", a.warnings);
    assert_eq!(got, want);
}

#[test]
fn tcpip_globals_inferred_on_2008r2_port_pool_globals() {
    let (built, a) = analyze_without("a-2008r2-497-day", &["tcpip.pdb"]);
    same_endpoints(&built, &a);
    assert!(
        a.notes.iter().any(|n| n.contains("tcpip symbols INFERRED")),
        "{:?}",
        a.notes
    );
    assert_eq!(
        a.verdict.level,
        portleak::analysis::verdict::Level::Exhausted
    );
}

#[test]
fn tcpip_globals_inferred_through_the_compartment_chain() {
    let (built, a) = analyze_without("c-2022-kernel-wsk", &["tcpip.pdb"]);
    same_endpoints(&built, &a);
    assert!(
        a.notes.iter().any(|n| n.contains("TcpCompartmentSet")),
        "{:?}",
        a.notes
    );
}

#[test]
fn no_pdb_at_all_uses_builtin_kernel_offsets() {
    let (built, a) = analyze_without(
        "f-win10-dual-stack",
        &["tcpip.pdb", "ntkrnlmp.pdb", "afd.pdb"],
    );
    same_endpoints(&built, &a);
    assert_eq!(a.processes.len(), built.truth_data.processes.len());
    assert!(
        a.notes.iter().any(|n| n.contains("built-in table")),
        "{:?}",
        a.notes
    );
    assert!(a.afd.is_none(), "AfdEndpointListHead needs afd.pdb");
}
