//! Checks the fake Windows modules that `tools/fakemods/gen.py` committed under
//! `tests/fixtures/modules/<build>/`.
//!
//! The synthetic dumps map these images and the engine reads kernel types and
//! module globals through their PDBs, so every number the generator *meant* to
//! produce (its manifest) must come back out of the PDB and PE through the same
//! readers the engine uses (`pdb`, `goblin`). Microsoft's public tcpip.pdb and
//! afd.pdb carry publics but no private types (tcpip-afd-facts.md 1.1), and the
//! fakes must too, or the tests downstream would exercise a path no user has.

mod fakemods_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use fakemods_support::*;
use goblin::pe::PE;
use pdb::{FallibleIterator, TypeData};
use serde_json::Value;

#[test]
fn every_build_has_all_three_modules() -> TestResult {
    for build in BUILDS {
        let m = manifest(build)?;
        assert_eq!(m["build"].as_u64(), Some(u64::from(build)));
        for key in MODULES {
            let md = module(&m, key);
            for file in [str_of(md, "file"), str_of(md, "pdb")] {
                let path = fixtures().join(build.to_string()).join(file);
                let len = std::fs::metadata(&path)?.len();
                // Real PE+PDB pairs, yet small enough to commit (tens of KB).
                assert!(
                    (1024..200 * 1024).contains(&len),
                    "{} is {len} bytes",
                    path.display()
                );
            }
        }
    }
    Ok(())
}

#[test]
fn kernel_types_read_back_exactly() -> TestResult {
    for build in BUILDS {
        let m = manifest(build)?;
        let nt = module(&m, "ntoskrnl");
        let types = pdb_types(&mut open_pdb(build, nt)?)?;
        let wanted = nt["types"]
            .as_object()
            .ok_or("ntoskrnl manifest has no types")?;
        assert!(
            wanted.len() >= 18,
            "{build}: only {} types in the manifest",
            wanted.len()
        );
        for (name, t) in wanted {
            let got = types
                .get(name)
                .unwrap_or_else(|| panic!("{build}: ntkrnlmp.pdb lacks {name}"));
            let fields: BTreeMap<String, u64> = t["fields"]
                .as_object()
                .ok_or("fields is not an object")?
                .iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(u64::MAX)))
                .collect();
            let want = TypeView {
                kind: if str_of(t, "kind") == "union" {
                    "union"
                } else {
                    "struct"
                },
                size: u64_of(t, "size"),
                fields,
            };
            assert_eq!(
                got, &want,
                "{build}: {name} differs between PDB and manifest"
            );
        }
    }
    Ok(())
}

#[test]
fn publics_read_back_exactly() -> TestResult {
    for build in BUILDS {
        let m = manifest(build)?;
        for key in MODULES {
            let md = module(&m, key);
            let publics = pdb_publics(&mut open_pdb(build, md)?)?;
            let want: BTreeMap<String, u64> = md["publics"]
                .as_object()
                .ok_or("publics is not an object")?
                .iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(u64::MAX)))
                .collect();
            let got: BTreeMap<String, u64> =
                publics.iter().map(|(k, p)| (k.clone(), p.rva)).collect();
            assert_eq!(got, want, "{build}/{key}: publics differ from the manifest");
            for name in md["globals"]
                .as_object()
                .ok_or("globals is not an object")?
                .keys()
            {
                assert!(
                    !publics[name].function,
                    "{build}/{key}: {name} is flagged a function"
                );
            }
            assert!(
                publics[str_of(md, "entry")].function,
                "{build}/{key}: entry is not a function"
            );
        }
    }
    Ok(())
}

#[test]
fn required_publics_exist_per_build() -> TestResult {
    let nt = [
        "PsActiveProcessHead",
        "PsLoadedModuleList",
        "KdDebuggerDataBlock",
        "KeMaximumIncrement",
        "KiWaitNever",
        "KiWaitAlways",
        "KdpDataBlockEncoded",
        "MmPfnDatabase",
        "PspCidTable",
        "PoolBigPageTable",
        "PoolBigPageTableSize",
        "KeBugCheckEx",
        "KiSystemStartup",
    ];
    for build in BUILDS {
        let m = manifest(build)?;
        let has = |key: &str, name: &str| {
            module(&m, key)["globals"].get(name).is_some()
                || module(&m, key)["publics"].get(name).is_some()
        };
        for name in nt {
            assert!(has("ntoskrnl", name), "{build}: ntoskrnl lacks {name}");
        }
        // Port-pool roots changed after build 10586 (tcpip-afd-facts.md 1.1).
        let roots = if build <= 10586 {
            ["TcpPortPool", "UdpPortPool"]
        } else {
            ["TcpCompartmentSet", "UdpCompartmentSet"]
        };
        for name in [
            "PartitionTable",
            "PartitionCount",
            roots[0],
            roots[1],
            "TcpCreateAndConnectTcb",
        ] {
            assert!(has("tcpip", name), "{build}: tcpip lacks {name}");
        }
        for name in [
            "AfdEndpointListHead",
            "AfdTlTransportListHead",
            "AfdIsAddressInUse",
        ] {
            assert!(has("afd", name), "{build}: afd lacks {name}");
        }
        let sizes = &module(&m, "afd")["globals"];
        assert_eq!(
            u64_of(&sizes["AfdEndpointListHead"], "size"),
            16,
            "LIST_ENTRY-sized head"
        );
        assert_eq!(
            u64_of(&module(&m, "tcpip")["globals"]["PartitionCount"], "size"),
            4
        );
    }
    Ok(())
}

#[test]
fn pe_identity_matches_pdb_and_manifest() -> TestResult {
    for build in BUILDS {
        let m = manifest(build)?;
        for key in MODULES {
            let md = module(&m, key);
            let bytes = read_image(build, md)?;
            let pe = PE::parse(&bytes)?;
            let cv = pe
                .debug_data
                .as_ref()
                .and_then(|d| d.codeview_pdb70_debug_info.as_ref())
                .ok_or_else(|| format!("{build}/{key}: no RSDS record"))?;
            let name = String::from_utf8_lossy(cv.filename)
                .trim_end_matches('\0')
                .to_string();
            assert_eq!(
                name,
                str_of(md, "pdb"),
                "{build}/{key}: RSDS must name the bare PDB"
            );
            let sig = cv.signature;
            let d1 = u32::from_le_bytes([sig[0], sig[1], sig[2], sig[3]]);
            let d2 = u16::from_le_bytes([sig[4], sig[5]]);
            let d3 = u16::from_le_bytes([sig[6], sig[7]]);
            let d4: [u8; 8] = sig[8..].try_into()?;
            let rsds_guid = guid_text((d1, d2, d3, &d4));

            let mut pdb = open_pdb(build, md)?;
            let info = pdb.pdb_information()?;
            let pdb_guid = guid_text(info.guid.as_fields());
            let dbi_age = pdb.debug_information()?.age().unwrap_or(info.age);
            assert_eq!(
                rsds_guid, pdb_guid,
                "{build}/{key}: PE and PDB GUIDs differ"
            );
            assert_eq!(
                rsds_guid,
                str_of(md, "pdb_guid"),
                "{build}/{key}: manifest GUID"
            );
            assert_eq!(
                u64::from(cv.age),
                u64_of(md, "age"),
                "{build}/{key}: RSDS age"
            );
            assert_eq!(
                cv.age, dbi_age,
                "{build}/{key}: DBI age differs from RSDS age"
            );
            let symstore = format!("{}{:X}", rsds_guid.replace(['{', '}', '-'], ""), cv.age);
            assert_eq!(symstore, str_of(md, "pdb_symstore"));
            assert_eq!(symstore.len(), 33);

            let opt = pe.header.optional_header.ok_or("no optional header")?;
            assert_eq!(pe.image_base, u64_of(md, "image_base"));
            assert_eq!(
                u64::from(opt.windows_fields.size_of_image),
                u64_of(md, "size_of_image")
            );
            assert_eq!(
                u64::from(pe.header.coff_header.time_date_stamp),
                u64_of(md, "timestamp")
            );
            assert_eq!(u64::from(pe.entry), u64_of(md, "entry_rva"));
        }
    }
    Ok(())
}

#[test]
fn version_resource_and_writable_globals() -> TestResult {
    for build in BUILDS {
        let m = manifest(build)?;
        for key in MODULES {
            let md = module(&m, key);
            let bytes = read_image(build, md)?;
            let pe = PE::parse(&bytes)?;
            // goblin 0.10's VsFixedFileInfo::file_version() reads the file *date*
            // fields, so the version words are read directly.
            let fixed = pe
                .resource_data
                .as_ref()
                .and_then(|r| r.version_info.as_ref())
                .and_then(|v| v.fixed_info)
                .ok_or_else(|| format!("{build}/{key}: no VS_FIXEDFILEINFO"))?;
            assert!(fixed.is_valid());
            let (ms, ls) = (fixed.file_version_ms, fixed.file_version_ls);
            let version = [ms >> 16, ms & 0xFFFF, ls >> 16, ls & 0xFFFF].map(u64::from);
            let want: Vec<u64> = md["file_version"]
                .as_array()
                .ok_or("file_version is not an array")?
                .iter()
                .filter_map(Value::as_u64)
                .collect();
            assert_eq!(
                version.to_vec(),
                want,
                "{build}/{key}: VS_VERSION_INFO file version"
            );
            assert_eq!(version[2], u64::from(build));

            // Globals must have file bytes in a writable section: the scenario
            // builder patches their values inside the mapped image.
            for (gname, g) in md["globals"]
                .as_object()
                .ok_or("globals is not an object")?
            {
                let (rva, size) = (u64_of(g, "rva"), u64_of(g, "size"));
                let sec = pe
                    .sections
                    .iter()
                    .find(|s| {
                        let va = u64::from(s.virtual_address);
                        rva >= va && rva + size <= va + u64::from(s.size_of_raw_data)
                    })
                    .ok_or_else(|| format!("{build}/{key}: {gname} is not in raw section bytes"))?;
                assert!(
                    sec.characteristics & 0x8000_0000 != 0,
                    "{build}/{key}: {gname} not writable"
                );
            }
        }
    }
    Ok(())
}

#[test]
fn driver_pdbs_carry_publics_but_no_types() -> TestResult {
    for build in BUILDS {
        let m = manifest(build)?;
        for key in MODULES {
            let md = module(&m, key);
            let mut pdb = open_pdb(build, md)?;
            let tpi = pdb.type_information()?;
            let mut iter = tpi.iter();
            let mut aggregates = BTreeSet::new();
            while let Some(item) = iter.next()? {
                match item.parse() {
                    Ok(TypeData::Class(c)) => aggregates.insert(c.name.to_string().into_owned()),
                    Ok(TypeData::Union(u)) => aggregates.insert(u.name.to_string().into_owned()),
                    Ok(TypeData::Enumeration(e)) => {
                        aggregates.insert(e.name.to_string().into_owned())
                    }
                    _ => false,
                };
            }
            if key == "ntoskrnl" {
                // The kernel PDB is the one that does carry types, as Microsoft's does.
                assert!(
                    aggregates.contains("_EPROCESS"),
                    "{build}: ntkrnlmp.pdb has no _EPROCESS"
                );
            } else {
                assert!(!aggregates.contains("_TCP_ENDPOINT"));
                assert!(
                    aggregates.is_empty(),
                    "{build}/{key}: private types {aggregates:?}"
                );
                assert!(
                    md.get("types").is_none(),
                    "{build}/{key}: manifest lists types"
                );
                assert!(
                    !pdb_publics(&mut pdb)?.is_empty(),
                    "{build}/{key}: no publics"
                );
            }
        }
    }
    Ok(())
}

#[test]
fn pdb_guids_are_distinct() -> TestResult {
    let mut seen = BTreeMap::new();
    for build in BUILDS {
        let m = manifest(build)?;
        for key in MODULES {
            let guid = str_of(module(&m, key), "pdb_guid").to_string();
            if let Some(prev) = seen.insert(guid.clone(), (build, key)) {
                panic!("{build}/{key} reuses PDB GUID {guid} of {prev:?}");
            }
        }
    }
    assert_eq!(seen.len(), BUILDS.len() * MODULES.len());
    Ok(())
}

/// EPROCESS offsets transcribed from tcpip-afd-facts.md section 1.9 (sources:
/// Vergilius-derived headers for 7601.17514, 17763.107, 19041.1288, 22621.382;
/// 20348 inferred there from 19041 == 22000). Columns: UniqueProcessId,
/// ActiveProcessLinks, CreateTime, ExitTime, ObjectTable, ImageFileName,
/// InheritedFromUniqueProcessId, ExitStatus.
const FACTS_EPROCESS: [(u32, [u64; 8]); 5] = [
    (
        7601,
        [0x180, 0x188, 0x168, 0x170, 0x200, 0x2E0, 0x290, 0x444],
    ),
    (
        17763,
        [0x2E0, 0x2E8, 0x308, 0x690, 0x418, 0x450, 0x3E0, 0x624],
    ),
    (
        19041,
        [0x440, 0x448, 0x468, 0x840, 0x570, 0x5A8, 0x540, 0x7D4],
    ),
    (
        20348,
        [0x440, 0x448, 0x468, 0x840, 0x570, 0x5A8, 0x540, 0x7D4],
    ),
    (
        22621,
        [0x440, 0x448, 0x468, 0x840, 0x570, 0x5A8, 0x540, 0x7D4],
    ),
];
const FACTS_EPROCESS_FIELDS: [&str; 8] = [
    "UniqueProcessId",
    "ActiveProcessLinks",
    "CreateTime",
    "ExitTime",
    "ObjectTable",
    "ImageFileName",
    "InheritedFromUniqueProcessId",
    "ExitStatus",
];

#[test]
fn kernel_offsets_match_the_facts_tables() -> TestResult {
    for (build, offsets) in FACTS_EPROCESS {
        let m = manifest(build)?;
        let types = &module(&m, "ntoskrnl")["types"];
        let ep = &types["_EPROCESS"]["fields"];
        for (name, off) in FACTS_EPROCESS_FIELDS.iter().zip(offsets) {
            assert_eq!(ep[*name].as_u64(), Some(off), "{build}: _EPROCESS.{name}");
        }
        // KPROCESS.DirectoryTableBase 0x28 and Header.Type at 0 (facts 1.9).
        assert_eq!(ep["Pcb.DirectoryTableBase"].as_u64(), Some(0x28));
        assert_eq!(ep["Pcb.Header.Type"].as_u64(), Some(0));
        // KUSER_SHARED_DATA (facts 1.10 / dump-format-facts 1.8): NtBuildNumber
        // exists from Windows 10 only; 7601 has Reserved2 there.
        let ku = &types["_KUSER_SHARED_DATA"]["fields"];
        for (name, off) in [
            ("TickCountMultiplier", 0x4),
            ("InterruptTime", 0x8),
            ("SystemTime", 0x14),
            ("NtMajorVersion", 0x26C),
            ("NtMinorVersion", 0x270),
            ("TickCountQuad", 0x320),
            ("InterruptTimeBias", 0x3B0),
        ] {
            assert_eq!(
                ku[name].as_u64(),
                Some(off),
                "{build}: _KUSER_SHARED_DATA.{name}"
            );
        }
        let want_build = if build == 7601 { None } else { Some(0x260) };
        assert_eq!(
            ku["NtBuildNumber"].as_u64(),
            want_build,
            "{build}: NtBuildNumber"
        );
        // KDDEBUGGER_DATA64 (dump-format-facts 1.7).
        let kd = &types["_KDDEBUGGER_DATA64"]["fields"];
        for (name, off) in [
            ("Header.OwnerTag", 0x10),
            ("Header.Size", 0x14),
            ("KernBase", 0x18),
            ("PsLoadedModuleList", 0x48),
            ("PsActiveProcessHead", 0x50),
            ("MmPfnDatabase", 0xC0),
            ("KiProcessorBlock", 0x218),
            ("OffsetPrcbContext", 0x338),
        ] {
            assert_eq!(
                kd[name].as_u64(),
                Some(off),
                "{build}: _KDDEBUGGER_DATA64.{name}"
            );
        }
        let oh = &types["_OBJECT_HEADER"]["fields"];
        assert_eq!(
            (
                oh["TypeIndex"].as_u64(),
                oh["InfoMask"].as_u64(),
                oh["Body"].as_u64()
            ),
            (Some(0x18), Some(0x1A), Some(0x30))
        );
        let pool = &types["_POOL_HEADER"];
        assert_eq!(
            (pool["size"].as_u64(), pool["fields"]["PoolTag"].as_u64()),
            (Some(16), Some(4))
        );
    }
    Ok(())
}

/// Regenerates every fixture into a scratch directory and compares bytes. It
/// needs the same clang/lld that made the committed files (the manifest
/// records clang's version); elsewhere it says why it skipped.
#[test]
fn regeneration_is_byte_identical_when_clang_is_present() -> TestResult {
    let recorded = manifest(BUILDS[0])?["generator"]["clang"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let first_line = |tool: &str| -> Option<String> {
        let out = Command::new(tool).arg("--version").output().ok()?;
        out.status.success().then(|| {
            let text = String::from_utf8_lossy(&out.stdout);
            text.lines().next().unwrap_or("").to_string()
        })
    };
    // gen.py needs all four tools; without any of them there is nothing to
    // compare. Spawning is the probe: llvm-rc has no --version.
    for tool in ["python3", "lld-link", "llvm-rc"] {
        if Command::new(tool).arg("--help").output().is_err() {
            eprintln!("skipped: {tool} is not installed, so the fixtures cannot be regenerated");
            return Ok(());
        }
    }
    let Some(clang) = first_line("clang") else {
        eprintln!("skipped: clang is not installed, so the fixtures cannot be regenerated");
        return Ok(());
    };
    if clang != recorded {
        eprintln!("skipped: clang is {clang:?} but the fixtures were made with {recorded:?}");
        return Ok(());
    }
    let scratch =
        Scratch(std::env::temp_dir().join(format!("portleak-fakemods-{}", std::process::id())));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/fakemods/gen.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg("--out")
        .arg(&scratch.0)
        .output()?;
    if !out.status.success() {
        return Err(format!("gen.py failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    for build in BUILDS {
        let committed = fixtures().join(build.to_string());
        let fresh = scratch.0.join(build.to_string());
        let mut names: Vec<_> = std::fs::read_dir(&committed)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        assert_eq!(
            names.len(),
            7,
            "{build}: expected 6 binaries and a manifest"
        );
        for name in names {
            let a = std::fs::read(committed.join(&name))?;
            let b = std::fs::read(fresh.join(&name))?;
            let name = name.to_string_lossy();
            assert!(a == b, "{build}/{name}: regenerated bytes differ");
        }
    }
    Ok(())
}

/// Removes the regeneration directory even when an assertion panics.
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
