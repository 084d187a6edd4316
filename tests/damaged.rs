//! Damaged dumps give a partial report with warnings, never a panic or an endless walk: a cut
//! file, a hash bucket whose entries point back at each other, a process list that loops, and
//! garbage where the partition table should be. The damage is patched into real scenario dumps
//! at file offsets found through the reader's own translation.

mod common;

use common::{analyze_dump as run, build};
use portleak::analysis::{analyze, Analysis, Options};
use portleak::offline::OfflineTarget;
use std::path::Path;
use std::sync::Arc;
use symbols::SymbolCache;

/// File offset of a kernel virtual address in `dump`.
fn file_offset(dump: &Path, va: u64) -> u64 {
    let d = dumps::Dump::open(dump).unwrap();
    let t = dumps::Reader::new(&d).translate(dumps::Gva(va)).unwrap();
    d.file_offset(t.gpa.pfn()).unwrap() + (t.gpa.u64() & 0xFFF)
}

fn patch_u64(dump: &Path, va: u64, value: u64) {
    use std::io::{Seek, SeekFrom, Write};
    let off = file_offset(dump, va);
    let mut f = std::fs::OpenOptions::new().write(true).open(dump).unwrap();
    f.seek(SeekFrom::Start(off)).unwrap();
    f.write_all(&value.to_le_bytes()).unwrap();
}

fn warned(a: &Analysis, kind: &str) -> bool {
    a.warnings.iter().any(|w| w.kind == kind)
}

#[test]
fn cyclic_hash_bucket_is_cut_and_reported() {
    let (built, dir) = build("d-win10-close-wait", "cycle");
    let truth = &built.truth_data;
    // Two TCBs in the same walk: make the second's successor the first (a loop that never
    // returns to the bucket head). Find a pair linked to each other through the dump itself.
    let d = dumps::Dump::open(&built.dump).unwrap();
    let r = dumps::Reader::new(&d);
    let tcbs: Vec<u64> = truth
        .endpoints
        .iter()
        .filter(|e| e.pool_tag == "TcpE")
        .map(|e| e.va)
        .collect();
    let link_off = symbols::layouts::tcpip(truth.build, None)
        .unwrap()
        .tcb
        .hash_link
        .preferred() as u64;
    let (a, b) = tcbs
        .iter()
        .find_map(|&a| {
            let next = r.read_u64(dumps::Gva(a + link_off)).ok()?;
            tcbs.contains(&(next - link_off))
                .then_some((a + link_off, next))
        })
        .expect("two TCBs chained in one bucket");
    drop(d);
    patch_u64(&built.dump, b, a);
    let an = run(&built.dump, &built.symbols_dir).unwrap();
    assert!(warned(&an, "hash-cycle"), "{:?}", an.warnings);
    // Entries past the cut are still found through the port pool's assignment chains (the second
    // root of the walk), and nothing is counted twice.
    let placed: std::collections::HashSet<u64> = truth.endpoints.iter().map(|e| e.va).collect();
    assert!(an.endpoints.iter().all(|e| placed.contains(&e.object)));
    assert!(
        an.endpoints.len() > truth.endpoints.len() / 2,
        "a cut bucket costs only its own entries"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn looping_process_list_is_cut() {
    let (built, dir) = build("b-2019-bound-leak", "proc");
    let truth = &built.truth_data;
    // The third process's ActiveProcessLinks.Flink points back at the second's.
    let links = symbols::layouts::nt(truth.build)
        .unwrap()
        .eprocess
        .active_process_links
        .preferred() as u64;
    let p2 = truth.processes[1].eprocess + links;
    let p3 = truth.processes[2].eprocess + links;
    patch_u64(&built.dump, p3, p2);
    let an = run(&built.dump, &built.symbols_dir).unwrap();
    assert!(warned(&an, "list-cycle"), "{:?}", an.warnings);
    // Processes after the loop are still found through their endpoints' owner pointers.
    assert!(an.processes.len() >= 3);
    assert!(!an.endpoints.is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn garbage_partition_table_pointer_still_reports_port_pools() {
    let (built, dir) = build("e-win11-healthy", "pt");
    let sym = &built.symbols_dir;
    let d = dumps::Dump::open(&built.dump).unwrap();
    let t = OfflineTarget::new(&d, common::symbol_path(sym), Arc::new(SymbolCache::new()));
    use portleak::Target;
    let pt = t.symbol_address("tcpip", "PartitionTable").unwrap();
    drop(t);
    drop(d);
    patch_u64(&built.dump, pt, 0x4141_4141_4141_4141);
    let an = run(&built.dump, sym).unwrap();
    assert!(warned(&an, "partition-table"), "{:?}", an.warnings);
    assert!(
        an.endpoints
            .iter()
            .any(|e| e.kind == portleak::model::ObjectKind::Listener),
        "listeners still come from the port pool"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn truncated_dump_opens_partially_or_fails_clearly() {
    let (built, dir) = build("f-win10-dual-stack", "trunc");
    let len = std::fs::metadata(&built.dump).unwrap().len();
    for keep in [0u64, 100, 0x1000, 0x2000, 0x2100, len / 3, len / 2, len - 1] {
        let cut = dir.join(format!("cut-{keep}.dmp"));
        let bytes = std::fs::read(&built.dump).unwrap();
        std::fs::write(&cut, &bytes[..keep as usize]).unwrap();
        match run(&cut, &built.symbols_dir) {
            Ok(a) => {
                // Whatever survives, the report renders.
                let mut out = portleak::render::PlainText::default();
                portleak::report::report(&a, &mut out);
                assert!(out.0.contains("VERDICT"));
            }
            Err(e) => assert!(!e.is_empty()),
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn interrupted_walk_gives_a_partial_report() {
    let (built, dir) = build("a-2008r2-497-day", "intr");
    let d = dumps::Dump::open(&built.dump).unwrap();
    let sym = common::symbol_path(&built.symbols_dir);
    let inner = OfflineTarget::new(&d, sym, Arc::new(SymbolCache::new()));
    let mut t = portleak::testing::Watched::new(&inner);
    t.interrupt_after = Some(200);
    let a = analyze(&t, &Options::default());
    assert!(a.partial);
    assert!(a.endpoints.len() < built.truth_data.endpoints.len());
    let mut out = portleak::render::PlainText::default();
    portleak::report::report(&a, &mut out);
    assert!(out.0.contains("PARTIAL RESULT"));
    let _ = std::fs::remove_dir_all(dir);
}
