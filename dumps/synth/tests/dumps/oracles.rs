//! Independent readers agree with ours on every generated dump; the symbol store reads back;
//! the same scenario gives the same bytes.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use dumps::Dump;
use kdmp_parser::gxa::Gxa;

use super::{cases, manifest, nt_field, out_root};

fn our_pages(dump: &Dump) -> BTreeSet<u64> {
    dump.pfns().map(|p| p.0 << 12).collect()
}

#[test]
fn kdmp_parser_crate_sees_the_same_pages_and_modules() {
    for c in cases() {
        let t = &c.built.truth_data;
        let ours = Dump::open(&c.built.dump).unwrap();
        let kd = kdmp_parser::parse::KernelDumpParser::new(&c.built.dump)
            .unwrap_or_else(|e| panic!("{}: kdmp-parser refuses the dump: {e}", t.scenario));
        let theirs: BTreeSet<u64> = kd.physmem().map(|(gpa, _)| gpa.u64()).collect();
        assert_eq!(ours.page_count() as usize, theirs.len(), "{}", t.scenario);
        assert_eq!(our_pages(&ours), theirs, "{}: page sets differ", t.scenario);
        assert_eq!(kd.headers().directory_table_base, t.dtb, "{}", t.scenario);
        // kdmp-parser walks PsLoadedModuleList itself.
        let mods: BTreeSet<(u64, String)> = kd
            .kernel_modules()
            .map(|(r, n)| (r.start.u64(), n.to_string()))
            .collect();
        for m in &t.modules {
            assert!(
                mods.iter()
                    .any(|(b, n)| *b == m.base && n.ends_with(&m.name)),
                "{}: kdmp-parser misses {} in {mods:?}",
                t.scenario,
                m.name
            );
        }
    }
}

/// The Python bindings of the C++ kdmp-parser (PyPI kdmp-parser 0.7.4): same page set, and a
/// virtual read of every EPROCESS through the header DTB. Skipped when Python lacks the module;
/// a failure when CI=true, where it must be installed.
#[test]
fn python_kdmp_parser_agrees_when_available() {
    let probe = Command::new("python3")
        .args(["-c", "import kdmp_parser"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but Python has no kdmp_parser (pip install kdmp-parser==0.7.4)"
        );
        eprintln!(
            "skipped: python3 -c 'import kdmp_parser' failed (pip install kdmp-parser==0.7.4)"
        );
        return;
    }
    let script = r#"
import sys, kdmp_parser
d = kdmp_parser.KernelDumpParser(sys.argv[1])
import hashlib
pages = sorted(int(pa) for pa in d.pages.keys())
print("PAGES", len(pages), hashlib.sha256(",".join(hex(p) for p in pages).encode()).hexdigest())
print("DTB", hex(d.directory_table_base))
for va in sys.argv[2:]:
    pa = d.translate_virtual(int(va, 16), d.directory_table_base)
    page = d.read_virtual_page(int(va, 16) & ~0xfff, d.directory_table_base)
    print("VA", va, hex(pa) if pa is not None else None, page is not None)
"#;
    for c in cases() {
        let t = &c.built.truth_data;
        let vas: Vec<String> = t
            .processes
            .iter()
            .map(|p| format!("{:#x}", p.eprocess))
            .collect();
        let out = Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(&c.built.dump)
            .args(&vas)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {}",
            t.scenario,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains(&format!("DTB {:#x}", t.dtb)),
            "{}: {text}",
            t.scenario
        );
        let ours = Dump::open(&c.built.dump).unwrap();
        let list = our_pages(&ours)
            .iter()
            .map(|p| format!("{p:#x}"))
            .collect::<Vec<_>>()
            .join(",");
        let digest = Command::new("python3")
            .args([
                "-c",
                "import sys,hashlib; print(hashlib.sha256(sys.stdin.read().encode()).hexdigest())",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut ch| {
                use std::io::Write;
                ch.stdin.take().unwrap().write_all(list.as_bytes())?;
                ch.wait_with_output()
            })
            .unwrap();
        let digest = String::from_utf8_lossy(&digest.stdout).trim().to_string();
        assert!(
            text.contains(&format!("PAGES {} {digest}", ours.page_count())),
            "{}: page sets differ: {text}",
            t.scenario
        );
        let r = dumps::Reader::new(&ours);
        for line in text.lines().filter(|l| l.starts_with("VA ")) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let va = u64::from_str_radix(f[1].trim_start_matches("0x"), 16).unwrap();
            let pa = r.gpa(dumps::Gva(va)).unwrap().0;
            assert_eq!(
                f[2],
                format!("{pa:#x}"),
                "{}: translation of {va:#x}",
                t.scenario
            );
            assert_eq!(
                f[3], "True",
                "{}: page of {va:#x} unreadable to the wheel",
                t.scenario
            );
        }
    }
}

#[test]
fn symbol_store_pdbs_read_back_with_the_manifest() {
    for c in cases() {
        let t = &c.built.truth_data;
        let m = manifest(t.build);
        for (key, md) in m["modules"].as_object().unwrap() {
            let pdb = md["pdb"].as_str().unwrap();
            let store = md["pdb_symstore"].as_str().unwrap();
            let path = c.built.symbols_dir.join(pdb).join(store).join(pdb);
            let (guid, age) = symbols::pdb::read_identity(&path)
                .unwrap_or_else(|e| panic!("{}: {}: {e}", t.scenario, path.display()));
            let hex = format!(
                "{:08X}{:04X}{:04X}{}{:X}",
                u32::from_le_bytes(guid[0..4].try_into().unwrap()),
                u16::from_le_bytes(guid[4..6].try_into().unwrap()),
                u16::from_le_bytes(guid[6..8].try_into().unwrap()),
                guid[8..]
                    .iter()
                    .map(|b| format!("{b:02X}"))
                    .collect::<String>(),
                age
            );
            assert_eq!(
                hex, store,
                "{}: {key} PDB identity vs its store directory",
                t.scenario
            );
            let p = symbols::Pdb::open_unchecked(&path).unwrap();
            for (name, rva) in md["publics"].as_object().unwrap() {
                assert_eq!(
                    u64::from(p.symbol_rva(name).unwrap()),
                    rva.as_u64().unwrap(),
                    "{}: {key}!{name}",
                    t.scenario
                );
            }
            if key == "ntoskrnl" {
                for f in [
                    "UniqueProcessId",
                    "ActiveProcessLinks",
                    "ImageFileName",
                    "CreateTime",
                ] {
                    assert_eq!(
                        p.field_offset("_EPROCESS", f).unwrap(),
                        nt_field(&m, "_EPROCESS", f),
                        "{}: _EPROCESS.{f}",
                        t.scenario
                    );
                }
            }
        }
    }
}

fn build_into(name: &str, dir: &Path) -> synth::Built {
    let s = synth::Scenario::from_toml(synth::scenarios::get(name).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(dir);
    synth::build(&s, dir).unwrap()
}

#[test]
fn same_scenario_same_bytes() {
    let name = "f-win10-dual-stack";
    let first = cases().iter().find(|c| c.scenario.name == name).unwrap();
    let again = build_into(name, &out_root().join("determinism"));
    assert_eq!(
        std::fs::read(&first.built.dump).unwrap(),
        std::fs::read(&again.dump).unwrap(),
        "dump bytes differ"
    );
    assert_eq!(
        std::fs::read(&first.built.truth).unwrap(),
        std::fs::read(&again.truth).unwrap(),
        "truth differs"
    );
}

#[test]
fn every_dump_type_opens() {
    let base = synth::scenarios::get("f-win10-dual-stack").unwrap();
    for ty in [1, 6, 8] {
        let text = base.replace("dump_type = 5", &format!("dump_type = {ty}"));
        let s = synth::Scenario::from_toml(&text).unwrap();
        let b = synth::build(&s, &out_root().join(format!("type{ty}"))).unwrap();
        let d = Dump::open(&b.dump).unwrap();
        assert_eq!(d.header().dump_type.value(), ty);
        assert_eq!(
            d.page_count(),
            b.frames,
            "type {ty}: every laid-out frame is in the dump"
        );
        let kd = kdmp_parser::parse::KernelDumpParser::new(&b.dump).unwrap();
        assert_eq!(
            kd.physmem().len() as u64,
            b.frames,
            "type {ty}: kdmp-parser page count"
        );
    }
}
