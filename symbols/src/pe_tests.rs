//! Identity of the fake kernel modules in tests/fixtures/modules (real clang + lld-link images with
//! a version resource), checked against their manifest.json and against goblin as an independent
//! PE reader, including images with pages missing as in a dump.

use super::*;
use std::path::PathBuf;

fn fixture_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/modules");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("fixture modules missing at {}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("manifest.json").is_file())
        .collect();
    dirs.sort();
    assert!(
        !dirs.is_empty(),
        "no fixture builds under {}",
        root.display()
    );
    dirs
}

fn modules(dir: &Path) -> Vec<(PathBuf, serde_json::Value)> {
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    m["modules"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| (dir.join(v["file"].as_str().unwrap()), v.clone()))
        .collect()
}

/// Lays the file out as the loader maps it, using goblin's section table (not ours).
fn mapped(bytes: &[u8]) -> Vec<u8> {
    let pe = goblin::pe::PE::parse(bytes).unwrap();
    let opt = pe.header.optional_header.unwrap();
    let mut img = vec![0u8; opt.windows_fields.size_of_image as usize];
    let hdr = opt.windows_fields.size_of_headers as usize;
    img[..hdr].copy_from_slice(&bytes[..hdr]);
    for s in &pe.sections {
        let (va, raw, len) = (
            s.virtual_address as usize,
            s.pointer_to_raw_data as usize,
            s.size_of_raw_data as usize,
        );
        let len = len.min(img.len() - va);
        img[va..va + len].copy_from_slice(&bytes[raw..raw + len]);
    }
    img
}

/// A reader over a mapped image whose pages in `holes` are absent: reads stop at the first one.
fn with_holes<'a>(img: &'a [u8], holes: &[u32]) -> impl Fn(u32, &mut [u8]) -> usize + 'a {
    let holes = holes.to_vec();
    move |rva, buf| {
        let mut n = 0;
        while n < buf.len() {
            let at = rva as usize + n;
            if at >= img.len() || holes.contains(&((at as u32) & !0xfff)) {
                break;
            }
            buf[n] = img[at];
            n += 1;
        }
        n
    }
}

fn guid_braced(v: &serde_json::Value) -> String {
    v["pdb_guid"].as_str().unwrap().to_string()
}

#[test]
fn files_match_the_manifest_and_goblin() {
    for dir in fixture_dirs() {
        for (file, m) in modules(&dir) {
            let id = ModuleIdentity::from_file(&file).unwrap();
            let ctx = file.display().to_string();
            assert_eq!(id.machine, MACHINE_AMD64, "{ctx}");
            assert_eq!(
                u64::from(id.timestamp),
                m["timestamp"].as_u64().unwrap(),
                "{ctx}"
            );
            assert_eq!(
                u64::from(id.size_of_image),
                m["size_of_image"].as_u64().unwrap(),
                "{ctx}"
            );
            let want_ver: Vec<u16> = m["file_version"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u16)
                .collect();
            assert_eq!(id.version().map(|v| v.to_vec()), Some(want_ver), "{ctx}");
            let pdb = id.pdb.as_ref().unwrap();
            assert_eq!(pdb.name, m["pdb"].as_str().unwrap(), "{ctx}");
            assert_eq!(pdb.guid_braced(), guid_braced(&m), "{ctx}");
            assert_eq!(u64::from(pdb.age), m["age"].as_u64().unwrap(), "{ctx}");
            assert_eq!(
                pdb.store_key(),
                m["pdb_symstore"].as_str().unwrap(),
                "{ctx}"
            );

            let bytes = std::fs::read(&file).unwrap();
            let g = goblin::pe::PE::parse(&bytes).unwrap();
            let cv = g.debug_data.unwrap().codeview_pdb70_debug_info.unwrap();
            assert_eq!(cv.signature, pdb.guid, "{ctx}");
            assert_eq!(cv.age, pdb.age, "{ctx}");
            assert_eq!(g.header.coff_header.time_date_stamp, id.timestamp, "{ctx}");

            // The same answers from the image as mapped in memory.
            let img = mapped(&bytes);
            assert_eq!(
                ModuleIdentity::from_reader(&img[..], id.size_of_image).unwrap(),
                id,
                "{ctx}"
            );
        }
    }
}

#[test]
fn paged_out_resources_keep_the_rsds_and_vice_versa() {
    let dir = &fixture_dirs()[0];
    for (file, m) in modules(dir) {
        let bytes = std::fs::read(&file).unwrap();
        let img = mapped(&bytes);
        let size = img.len() as u32;
        let g = goblin::pe::PE::parse(&bytes).unwrap();
        let rsrc = g
            .sections
            .iter()
            .find(|s| s.name().ok() == Some(".rsrc"))
            .unwrap()
            .virtual_address;
        let debug = g
            .header
            .optional_header
            .unwrap()
            .data_directories
            .get_debug_table()
            .unwrap()
            .virtual_address;

        let no_rsrc =
            ModuleIdentity::from_reader(&with_holes(&img, &[rsrc & !0xfff]), size).unwrap();
        assert_eq!(no_rsrc.pdb.as_ref().unwrap().guid_braced(), guid_braced(&m));
        match &no_rsrc.file_version {
            Err(IdentityError::Unreadable { rva, got: 0, .. }) => assert_eq!(*rva, rsrc),
            other => panic!(
                "{}: expected an unreadable resource directory, got {other:?}",
                file.display()
            ),
        }
        assert!(no_rsrc
            .file_version
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("paged out"));

        let no_debug =
            ModuleIdentity::from_reader(&with_holes(&img, &[debug & !0xfff]), size).unwrap();
        assert!(
            matches!(
                no_debug.pdb,
                Err(IdentityError::Unreadable {
                    what: "debug directory",
                    ..
                })
            ),
            "{:?}",
            no_debug.pdb
        );
        assert!(no_debug.version().is_some());

        let no_headers = ModuleIdentity::from_reader(&with_holes(&img, &[0]), size).unwrap_err();
        assert!(
            matches!(
                no_headers,
                IdentityError::Unreadable {
                    what: "DOS header",
                    ..
                }
            ),
            "{no_headers}"
        );
    }
}

#[test]
fn a_version_block_on_a_missing_page_costs_only_the_version() {
    let dir = &fixture_dirs()[0];
    let (file, _) = &modules(dir)[0];
    let bytes = std::fs::read(file).unwrap();
    let mut img = mapped(&bytes);
    let g = goblin::pe::PE::parse(&bytes).unwrap();
    let rsrc = g
        .sections
        .iter()
        .find(|s| s.name().ok() == Some(".rsrc"))
        .unwrap()
        .virtual_address;
    let ok = ModuleIdentity::from_reader(&img[..], img.len() as u32).unwrap();
    // Grow the image by a page and point the data entry at it: the directory is readable, the
    // block it names is not.
    let far = img.len() as u32;
    img.resize(img.len() + 0x1000, 0);
    let size = img.len() as u32;
    let base = ModuleIdentity::from_reader(&with_holes(&img, &[far]), size).unwrap();
    assert_eq!(
        base.file_version, ok.file_version,
        "moving nothing yet changes nothing"
    );
    let data_entry = find_version_data_entry(&img, rsrc);
    img[data_entry..data_entry + 4].copy_from_slice(&far.to_le_bytes());
    let moved = ModuleIdentity::from_reader(&with_holes(&img, &[far]), size).unwrap();
    assert!(
        matches!(
            moved.file_version,
            Err(IdentityError::Unreadable {
                what: "VS_VERSIONINFO",
                ..
            })
        ),
        "{:?}",
        moved.file_version
    );
    assert_eq!(moved.pdb, ok.pdb);
}

/// Offset in the mapped image of the RT_VERSION data entry (type → first name → first language).
fn find_version_data_entry(img: &[u8], base: u32) -> usize {
    let mut off = 0usize;
    for level in 0..3 {
        let dir = base as usize + off;
        let n = usize::from(u16_at(img, dir + 12)) + usize::from(u16_at(img, dir + 14));
        let e = (0..n)
            .map(|i| dir + 16 + 8 * i)
            .find(|&e| level > 0 || u32_at(img, e) == 16)
            .unwrap();
        off = (u32_at(img, e + 4) & 0x7fff_ffff) as usize;
    }
    base as usize + off
}

#[test]
fn corrupt_records_are_reported_not_panicked_on() {
    let dir = &fixture_dirs()[0];
    let (file, _) = &modules(dir)[0];
    let bytes = std::fs::read(file).unwrap();
    let img = mapped(&bytes);
    let g = goblin::pe::PE::parse(&bytes).unwrap();
    let cv_rva = g
        .debug_data
        .unwrap()
        .find_type(2)
        .unwrap()
        .address_of_raw_data as usize;
    let mut bad = img.clone();
    bad[cv_rva..cv_rva + 4].copy_from_slice(b"NB10");
    let id = ModuleIdentity::from_reader(&bad[..], bad.len() as u32).unwrap();
    assert!(id.pdb.unwrap_err().to_string().contains("is not RSDS"));
    let mut not_pe = img.clone();
    not_pe[0] = b'X';
    assert!(matches!(
        ModuleIdentity::from_reader(&not_pe[..], not_pe.len() as u32),
        Err(IdentityError::Malformed { .. })
    ));
    // Every truncation of the image and every garbage byte value in the headers: never a panic.
    for len in (0..img.len()).step_by(7) {
        let _ = ModuleIdentity::from_reader(&img[..len], img.len() as u32);
    }
    for at in 0..0x400 {
        let mut m = img.clone();
        m[at] ^= 0xff;
        let _ = ModuleIdentity::from_reader(&m[..], m.len() as u32);
    }
}

#[test]
fn reads_beyond_the_recorded_image_size_are_refused() {
    let dir = &fixture_dirs()[0];
    let (file, _) = &modules(dir)[0];
    let img = mapped(&std::fs::read(file).unwrap());
    // A loader entry claiming a smaller image than the headers: pieces past it are malformed.
    let id = ModuleIdentity::from_reader(&img[..], 0x2000).unwrap();
    assert!(
        matches!(id.file_version, Err(IdentityError::Malformed { .. })),
        "{:?}",
        id.file_version
    );
}

#[test]
fn an_rsds_record_at_a_page_end_survives_a_missing_next_page() {
    let dir = &fixture_dirs()[0];
    let (file, m) = &modules(dir)[0];
    let bytes = std::fs::read(file).unwrap();
    let mut img = mapped(&bytes);
    let g = goblin::pe::PE::parse(&bytes).unwrap();
    let entry = g
        .header
        .optional_header
        .unwrap()
        .data_directories
        .get_debug_table()
        .unwrap()
        .virtual_address as usize;
    let cv = g.debug_data.unwrap().find_type(2).unwrap();
    let (from, len) = (cv.address_of_raw_data as usize, cv.size_of_data as usize);
    // Move the record to the last bytes of its page and pad SizeOfData into the next page, which
    // is then missing, as when .rdata's last page is present and the following one is not.
    let page_end = (from & !0xfff) + 0x1000;
    let at = page_end - len;
    let rec = img[from..from + len].to_vec();
    img[at..page_end].copy_from_slice(&rec);
    let cv_entry = (0..4)
        .map(|i| entry + 28 * i)
        .find(|&e| u32_at(&img, e + 12) == 2)
        .unwrap();
    img[cv_entry + 16..cv_entry + 20].copy_from_slice(&((len + 0x80) as u32).to_le_bytes());
    img[cv_entry + 20..cv_entry + 24].copy_from_slice(&(at as u32).to_le_bytes());
    let size = img.len() as u32;
    let id = ModuleIdentity::from_reader(&with_holes(&img, &[page_end as u32]), size).unwrap();
    assert_eq!(id.pdb.as_ref().unwrap().guid_braced(), guid_braced(m));
    // With the NUL itself on the missing page, the name is reported unreadable, not guessed.
    img[page_end - 1] = b'x';
    let id = ModuleIdentity::from_reader(&with_holes(&img, &[page_end as u32]), size).unwrap();
    assert!(
        matches!(
            id.pdb,
            Err(IdentityError::Unreadable {
                what: "PDB name in the CodeView record",
                ..
            })
        ),
        "{:?}",
        id.pdb
    );
}
