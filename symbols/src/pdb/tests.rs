//! PDB reading checked against `tests/data/shapes.c` (offsets pinned there with `_Static_assert`)
//! and the fake kernel modules under `tests/fixtures/modules` (offsets in their manifest.json).

use super::*;
use std::sync::Arc;

pub(crate) fn shapes_pdb() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/shapes.pdb")
}

fn shapes() -> Pdb {
    Pdb::open_unchecked(&shapes_pdb()).expect("shapes.pdb opens")
}

#[test]
fn identity_is_read_from_the_info_and_dbi_streams() {
    let pdb = shapes();
    // llvm-readobj --coff-debug-directory shapes.sys: PDBGUID (9E 15 A6 1C B2 F8 A2 01 4C 4C 44 20 50 44 42 2E), age 1.
    let want = [
        0x9E, 0x15, 0xA6, 0x1C, 0xB2, 0xF8, 0xA2, 0x01, 0x4C, 0x4C, 0x44, 0x20, 0x50, 0x44, 0x42,
        0x2E,
    ];
    assert_eq!(pdb.id().guid, want);
    assert_eq!(pdb.id().age, 1);
    assert_eq!(pdb.id().name, "shapes.pdb");
    assert!(pdb.has_types());
}

#[test]
fn sizes_and_nested_offsets_match_the_static_asserts() {
    let pdb = shapes();
    assert_eq!(pdb.type_size("_KPROCESS").unwrap(), 0x38);
    assert_eq!(pdb.type_size("_EPROCESS").unwrap(), 0x12348);
    assert_eq!(pdb.type_size("_LARGE").unwrap(), 8);
    assert_eq!(
        pdb.field_offset("_EPROCESS", "Pcb.DirectoryTableBase")
            .unwrap(),
        0x28
    );
    assert_eq!(
        pdb.field_offset("_EPROCESS", "UniqueProcessId").unwrap(),
        0x2e0
    );
    assert_eq!(
        pdb.field_offset("_EPROCESS", "ActiveProcessLinks.Blink")
            .unwrap(),
        0x2f0
    );
    assert_eq!(
        pdb.field_offset("_EPROCESS", "CreateTime.u.HighPart")
            .unwrap(),
        0x2fc
    );
    assert_eq!(
        pdb.field_offset("_EPROCESS", "CreateTime.QuadPart")
            .unwrap(),
        0x2f8
    );
    assert_eq!(pdb.field_offset("_EPROCESS", "Far").unwrap(), 0x12340);
    // The volatile member sits behind an LF_MODIFIER; its size is the modified type's.
    let sc = pdb.field("_EPROCESS", "Pcb.StackCount").unwrap();
    assert_eq!((sc.offset, sc.size), (0x34, 4));
}

#[test]
fn anonymous_union_members_and_bitfields() {
    let pdb = shapes();
    let flags = pdb.field("_KPROCESS", "Flags").unwrap();
    assert_eq!((flags.offset, flags.size, flags.bitfield), (0x30, 4, None));
    let boost = pdb.field("_EPROCESS", "Pcb.DisableBoost").unwrap();
    assert_eq!(boost.offset, 0x30);
    assert_eq!(boost.size, 4);
    assert_eq!(
        boost.bitfield,
        Some(Bitfield {
            position: 1,
            length: 1
        })
    );
    let rsv = pdb.field("_KPROCESS", "Reserved").unwrap();
    assert_eq!(
        rsv.bitfield,
        Some(Bitfield {
            position: 2,
            length: 30
        })
    );
    let err = pdb.field("_KPROCESS", "Reserved.X").unwrap_err();
    assert!(err.to_string().contains("is a bitfield"), "{err}");
}

#[test]
fn arrays_pointers_and_enums_are_described() {
    let pdb = shapes();
    let name = pdb.field("_EPROCESS", "ImageFileName").unwrap();
    assert_eq!((name.offset, name.size), (0x33c, 15));
    assert_eq!(
        name.ty,
        TypeDesc::Array {
            element: Box::new(TypeDesc::Base {
                name: "unsigned char".into(),
                size: 1
            }),
            count: 15
        }
    );
    let threads = pdb.field("_EPROCESS", "Threads").unwrap();
    assert_eq!(threads.ty.name(), "_LIST_ENTRY[3]");
    assert_eq!(
        pdb.field_offset("_EPROCESS", "Threads[2].Blink").unwrap(),
        0x300 + 2 * 16 + 8
    );
    assert_eq!(
        pdb.field_offset("_EPROCESS", "Threads[0x1]").unwrap(),
        0x310
    );
    let past = pdb.field("_EPROCESS", "Threads[3]").unwrap_err();
    assert!(past.to_string().contains("past the end"), "{past}");
    let opaque = pdb.field("_EPROCESS", "Opaque").unwrap();
    assert_eq!(
        opaque.ty,
        TypeDesc::Pointer {
            size: 8,
            target: "_OPAQUE".into()
        }
    );
    let flink = pdb.field("_EPROCESS", "ActiveProcessLinks.Flink").unwrap();
    assert_eq!(
        flink.ty,
        TypeDesc::Pointer {
            size: 8,
            target: "_LIST_ENTRY".into()
        }
    );
    let state = pdb.field("_EPROCESS", "State").unwrap();
    assert_eq!((state.offset, state.size), (0x338, 4));
    assert!(matches!(state.ty, TypeDesc::Enum { ref name, size: 4 } if name == "_STATE"));
}

#[test]
fn paths_through_pointers_or_to_unknown_fields_fail_with_reasons() {
    let pdb = shapes();
    let e = pdb.field("_EPROCESS", "Opaque.Anything").unwrap_err();
    assert!(e.to_string().contains("is a pointer"), "{e}");
    let e = pdb.field("_EPROCESS", "Pcb.NoSuchField").unwrap_err();
    assert_eq!(
        e.to_string(),
        "_EPROCESS.Pcb.NoSuchField: _EPROCESS.Pcb has no field named NoSuchField"
    );
    let e = pdb.type_size("_NOT_THERE").unwrap_err();
    assert_eq!(
        e,
        PdbError::NoType {
            pdb: "shapes.pdb".into(),
            ty: "_NOT_THERE".into()
        }
    );
    assert!(pdb.field("_EPROCESS", "").is_err());
    assert!(pdb.field("_EPROCESS", "Threads[x]").is_err());
}

#[test]
fn typedef_names_resolve_through_s_udt() {
    let pdb = shapes();
    assert_eq!(pdb.type_size("EPROCESS").unwrap(), 0x12348);
    assert_eq!(
        pdb.field_offset("KPROCESS", "DirectoryTableBase").unwrap(),
        0x28
    );
}

#[test]
fn field_list_continuations_are_followed() {
    let pdb = shapes();
    assert_eq!(pdb.field_offset("_WIDE", "Last").unwrap(), 20000);
    assert_eq!(pdb.field_offset("_WIDE", "c500").unwrap(), 10000);
    assert_eq!(pdb.field_offset("_WIDE", "e999").unwrap(), 19996);
}

#[test]
fn publics_and_globals_convert_to_rvas() {
    let pdb = shapes();
    // llvm-pdbutil dump --publics: section:offset; llvm-readobj --sections: .text 0x1000, .data 0x3000.
    assert_eq!(pdb.symbol_rva("KeMaximumIncrement").unwrap(), 0x3000);
    assert_eq!(
        pdb.symbol_rva("PsActiveProcessHead").unwrap(),
        0x3000 + 94584
    );
    assert_eq!(pdb.symbol_rva("ShapeProcess").unwrap(), 0x3000 + 20016);
    assert_eq!(pdb.symbol_rva("ShapeEntry").unwrap(), 0x1000 + 32);
    // A C++ global: the public is decorated, the global record is not; both spellings resolve.
    assert_eq!(pdb.symbol_rva("?CppCounter@@3KA").unwrap(), 0x3004);
    assert_eq!(pdb.symbol_rva("CppCounter").unwrap(), 0x3004);
    let e = pdb.symbol_rva("NoSuchSymbol").unwrap_err();
    assert_eq!(
        e.to_string(),
        "shapes.pdb has no public or global symbol NoSuchSymbol"
    );
}

#[test]
fn a_mismatched_pdb_is_refused() {
    let pdb = shapes();
    let mut id = pdb.id().clone();
    id.age = 2;
    let e = Pdb::open(&shapes_pdb(), &id).unwrap_err();
    assert!(
        matches!(
            e,
            PdbError::Mismatch {
                expected_age: 2,
                found_age: 1,
                ..
            }
        ),
        "{e}"
    );
    id.age = 1;
    id.guid[0] ^= 1;
    assert!(matches!(
        Pdb::open(&shapes_pdb(), &id),
        Err(PdbError::Mismatch { .. })
    ));
}

#[test]
fn not_a_pdb_is_a_format_error() {
    let dir = std::env::temp_dir().join(format!("portleak-symbols-notpdb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("junk.pdb");
    std::fs::write(&f, b"this is not a multi-stream file").unwrap();
    let e = Pdb::open_unchecked(&f).unwrap_err();
    assert!(matches!(e, PdbError::Format { .. }), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn types_are_indexed_once_and_answers_memoised() {
    let pdb = shapes();
    pdb.field_offset("_EPROCESS", "Pcb.DirectoryTableBase")
        .unwrap();
    pdb.field_offset("_EPROCESS", "ActiveProcessLinks").unwrap();
    pdb.field_offset("_EPROCESS", "Pcb.DisableBoost").unwrap();
    pdb.type_size("_WIDE").unwrap();
    // One pass indexes the stream; every later query decodes only what its path walks.
    assert_eq!(pdb.tpi_builds.load(Ordering::Relaxed), 1);
    assert_eq!(
        pdb.answers
            .read()
            .unwrap()
            .values()
            .map(HashMap::len)
            .sum::<usize>(),
        4
    );
    pdb.field_offset("_EPROCESS", "ActiveProcessLinks").unwrap();
    assert_eq!(
        pdb.answers
            .read()
            .unwrap()
            .values()
            .map(HashMap::len)
            .sum::<usize>(),
        4
    );
}

#[test]
fn one_pdb_answers_many_threads() {
    let pdb = Arc::new(shapes());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let pdb = pdb.clone();
            std::thread::spawn(move || {
                (
                    pdb.field_offset("_EPROCESS", "Far").unwrap(),
                    pdb.symbol_rva("ShapeWide").unwrap(),
                )
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), (0x12340, 0x3008));
    }
}

#[test]
fn corrupt_pdbs_fail_with_errors_not_panics() {
    let good = std::fs::read(shapes_pdb()).unwrap();
    let label = Path::new("corrupt.pdb");
    // Flip a byte every 61 bytes across the whole file (MSF header, stream directory, TPI, symbol
    // records), and truncate at a spread of lengths; every query must return, not panic.
    let mut cases: Vec<Vec<u8>> = (0..good.len())
        .step_by(61)
        .map(|at| {
            let mut b = good.clone();
            b[at] ^= 0x5a;
            b
        })
        .collect();
    cases.extend(
        (0..good.len())
            .step_by(good.len() / 40)
            .map(|n| good[..n].to_vec()),
    );
    let mut opened = 0;
    for bytes in cases {
        let Ok(pdb) = Pdb::from_bytes(bytes, label) else {
            continue;
        };
        opened += 1;
        let _ = pdb.field("_EPROCESS", "Pcb.DisableBoost");
        let _ = pdb.field("_EPROCESS", "Threads[2].Blink");
        let _ = pdb.type_size("_WIDE");
        let _ = pdb.symbol_rva("PsActiveProcessHead");
    }
    assert!(
        opened > 100,
        "only {opened} corrupt copies opened: the test exercises too little"
    );
}

#[test]
fn pdbs_and_the_cache_are_shareable_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Pdb>();
    send_sync::<crate::SymbolCache>();
}
