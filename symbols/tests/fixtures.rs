//! The fake kernel modules under tests/fixtures/modules (clang + lld-link PE/PDB pairs with
//! offsets pinned by _Static_assert; expected values in each build's manifest.json), read back
//! end to end: identity from the image, PDB found by GUID/age, then types and symbols.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use symbols::{ModuleIdentity, PdbError, SymbolCache, SymbolPath};

fn builds() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/modules");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("fixture modules missing at {}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("manifest.json").is_file())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty());
    dirs
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn every_fixture_module_resolves_its_symbols_and_types() {
    let cache = SymbolCache::new();
    let mut checked_fields = 0;
    for dir in builds() {
        let m = manifest(&dir);
        // The build directory is a plain directory: searched flat, accepted by GUID/age.
        let path = SymbolPath::parse(&dir.display().to_string());
        for (name, module) in m["modules"].as_object().unwrap() {
            let file = dir.join(module["file"].as_str().unwrap());
            let ident = ModuleIdentity::from_file(&file).unwrap();
            let id = ident.pdb.clone().unwrap();
            let pdb = cache
                .find_and_load(&path, &id, module["file"].as_str().unwrap())
                .unwrap();
            for (sym, rva) in module["publics"].as_object().unwrap() {
                assert_eq!(
                    u64::from(pdb.symbol_rva(sym).unwrap()),
                    rva.as_u64().unwrap(),
                    "{name}!{sym}"
                );
            }
            for (sym, g) in module["globals"].as_object().unwrap() {
                assert_eq!(
                    u64::from(pdb.symbol_rva(sym).unwrap()),
                    g["rva"].as_u64().unwrap(),
                    "{name}!{sym}"
                );
            }
            match module.get("types").and_then(|t| t.as_object()) {
                Some(types) => {
                    assert!(pdb.has_types(), "{name}");
                    for (ty, t) in types {
                        assert_eq!(
                            pdb.type_size(ty).unwrap(),
                            t["size"].as_u64().unwrap(),
                            "sizeof {name}!{ty}"
                        );
                        for (field, off) in t["fields"].as_object().unwrap() {
                            assert_eq!(
                                pdb.field_offset(ty, field).unwrap(),
                                off.as_u64().unwrap(),
                                "{name}!{ty}.{field}"
                            );
                            checked_fields += 1;
                        }
                    }
                }
                None => {
                    // Like Microsoft's public tcpip.pdb and afd.pdb: publics only.
                    assert!(!pdb.has_types(), "{name}");
                    let e = pdb.type_size("_TCP_ENDPOINT").unwrap_err();
                    assert!(matches!(e, PdbError::NoTypes { .. }), "{e}");
                }
            }
        }
    }
    assert!(checked_fields > 100, "only {checked_fields} fields checked");
}

#[test]
fn the_cache_parses_each_pdb_once_across_threads() {
    let dir = &builds()[0];
    let m = manifest(dir);
    let nt = &m["modules"]["ntoskrnl"];
    let id = ModuleIdentity::from_file(&dir.join(nt["file"].as_str().unwrap()))
        .unwrap()
        .pdb
        .unwrap();
    let file = dir.join(nt["pdb"].as_str().unwrap());
    let cache = Arc::new(SymbolCache::new());
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (cache, id, file) = (cache.clone(), id.clone(), file.clone());
            std::thread::spawn(move || {
                let pdb = cache.load(&file, &id).unwrap();
                (
                    Arc::as_ptr(&pdb) as usize,
                    pdb.field_offset("_EPROCESS", "Pcb.DirectoryTableBase")
                        .unwrap(),
                )
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(results.iter().all(|r| *r == results[0]), "{results:?}");
    assert_eq!(results[0].1, 0x28);
    let stats = cache.stats();
    assert_eq!((stats.loads, stats.hits), (1, 7));
}

#[test]
fn a_pdb_of_another_build_is_refused_by_the_cache() {
    let dirs = builds();
    if dirs.len() < 2 {
        return;
    }
    let (a, b) = (&dirs[0], &dirs[1]);
    let nt_a = ModuleIdentity::from_file(&a.join("ntoskrnl.exe"))
        .unwrap()
        .pdb
        .unwrap();
    let nt_b_pdb = b.join("ntkrnlmp.pdb");
    let e = SymbolCache::new().load(&nt_b_pdb, &nt_a).unwrap_err();
    assert!(matches!(e, PdbError::Mismatch { .. }), "{e}");
}

#[test]
fn a_module_whose_pdb_is_nowhere_gets_the_full_instructions() {
    let dir = &builds()[0];
    let id = ModuleIdentity::from_file(&dir.join("tcpip.sys"))
        .unwrap()
        .pdb
        .unwrap();
    // An empty store: the search runs and fails; nothing is loaded or cached.
    let empty = std::env::temp_dir().join(format!(
        "portleak-symbols-empty-store-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&empty).unwrap();
    let path = SymbolPath::parse(&format!(
        "srv*{}*https://msdl.microsoft.com/download/symbols",
        empty.display()
    ));
    let cache = SymbolCache::new();
    let e = cache.find_and_load(&path, &id, "tcpip.sys").unwrap_err();
    std::fs::remove_dir_all(&empty).ok();
    let text = e.to_string();
    assert!(
        text.starts_with("no symbols for tcpip.sys: it needs tcpip.pdb with GUID "),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "https://msdl.microsoft.com/download/symbols/tcpip.pdb/{}/tcpip.pdb",
            id.store_key()
        )),
        "{text}"
    );
    assert!(
        text.contains(r"symchk /r C:\Windows\System32\drivers\tcpip.sys /s srv*"),
        "{text}"
    );
    assert!(matches!(e, symbols::SymbolError::Missing(_)));
    assert_eq!(cache.stats().loads, 0);
    // Once the PDB is placed where the message says, the same call succeeds.
    let store = std::env::temp_dir().join(format!(
        "portleak-symbols-filled-store-{}",
        std::process::id()
    ));
    let dest = store
        .join("tcpip.pdb")
        .join(id.store_key())
        .join("tcpip.pdb");
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::copy(dir.join("tcpip.pdb"), &dest).unwrap();
    let path = SymbolPath::parse(&format!(
        "srv*{}*https://msdl.microsoft.com/download/symbols",
        store.display()
    ));
    let pdb = cache.find_and_load(&path, &id, "tcpip.sys").unwrap();
    assert_eq!(pdb.path(), dest.as_path());
    std::fs::remove_dir_all(&store).ok();
}
