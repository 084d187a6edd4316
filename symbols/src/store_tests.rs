use super::*;
use std::fs;

fn shapes_pdb() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/shapes.pdb")
}

/// The identity of tests/data/shapes.pdb (llvm-readobj --coff-debug-directory shapes.sys).
fn shapes_id() -> PdbId {
    PdbId {
        name: "shapes.pdb".into(),
        guid: [
            0x9E, 0x15, 0xA6, 0x1C, 0xB2, 0xF8, 0xA2, 0x01, 0x4C, 0x4C, 0x44, 0x20, 0x50, 0x44,
            0x42, 0x2E,
        ],
        age: 1,
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("portleak-symbols-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn put(&self, rel: &str) -> PathBuf {
        let p = self.0.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::copy(shapes_pdb(), &p).unwrap();
        p
    }
    fn spath(&self, form: &str) -> SymbolPath {
        SymbolPath::parse(&form.replace("DIR", &self.0.display().to_string()))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn store_key_is_uppercase_guid_then_hex_age() {
    let mut id = shapes_id();
    assert_eq!(id.guid_hex(), "1CA6159EF8B201A24C4C44205044422E");
    assert_eq!(id.store_key(), "1CA6159EF8B201A24C4C44205044422E1");
    id.age = 0x1f;
    assert_eq!(id.store_key(), "1CA6159EF8B201A24C4C44205044422E1F");
    assert_eq!(id.guid_braced(), "{1CA6159E-F8B2-01A2-4C4C-44205044422E}");
}

#[test]
fn two_tier_store() {
    let t = TempDir::new("two-tier");
    let want = t.put("shapes.pdb/1CA6159EF8B201A24C4C44205044422E1/shapes.pdb");
    assert_eq!(
        t.spath("srv*DIR*https://x")
            .find_pdb(&shapes_id(), "shapes.sys")
            .unwrap(),
        want
    );
    assert_eq!(
        t.spath("cache*DIR")
            .find_pdb(&shapes_id(), "shapes.sys")
            .unwrap(),
        want
    );
    // A plain directory is searched as a store too.
    assert_eq!(
        t.spath("DIR").find_pdb(&shapes_id(), "shapes.sys").unwrap(),
        want
    );
}

#[test]
fn index2_store() {
    let t = TempDir::new("index2");
    fs::write(t.0.join("index2.txt"), "").unwrap();
    let want = t.put("sh/shapes.pdb/1CA6159EF8B201A24C4C44205044422E1/shapes.pdb");
    assert_eq!(
        t.spath("srv*DIR")
            .find_pdb(&shapes_id(), "shapes.sys")
            .unwrap(),
        want
    );
}

#[test]
fn store_lookup_tolerates_case_differences() {
    let t = TempDir::new("case");
    let want = t.put("shapes.pdb/1ca6159ef8b201a24c4c44205044422e1/shapes.pdb");
    assert_eq!(
        t.spath("srv*DIR")
            .find_pdb(&shapes_id(), "shapes.sys")
            .unwrap(),
        want
    );
}

#[test]
fn wrong_guid_or_age_in_a_store_is_not_a_match() {
    let t = TempDir::new("wrong-key");
    t.put("shapes.pdb/1CA6159EF8B201A24C4C44205044422F1/shapes.pdb");
    t.put("shapes.pdb/1CA6159EF8B201A24C4C44205044422E2/shapes.pdb");
    let e = t
        .spath("srv*DIR")
        .find_pdb(&shapes_id(), "shapes.sys")
        .unwrap_err();
    assert_eq!(e.looked.len(), 1);
    assert!(e.looked[0]
        .path
        .ends_with("shapes.pdb/1CA6159EF8B201A24C4C44205044422E1/shapes.pdb"));
}

#[test]
fn flat_directory_only_with_matching_identity() {
    let t = TempDir::new("flat");
    let want = t.put("shapes.pdb");
    assert_eq!(
        t.spath("DIR").find_pdb(&shapes_id(), "shapes.sys").unwrap(),
        want
    );
    // Same name, other age: the file is found and rejected, and the message says why.
    let mut older = shapes_id();
    older.age = 2;
    let e = t.spath("DIR").find_pdb(&older, "shapes.sys").unwrap_err();
    let flat = e
        .looked
        .iter()
        .find(|l| l.path == want)
        .expect("flat file listed");
    assert!(
        flat.outcome.contains("a different build") && flat.outcome.contains("age 1"),
        "{}",
        flat.outcome
    );
    let mut other = shapes_id();
    other.guid[3] ^= 0x80;
    assert!(t.spath("DIR").find_pdb(&other, "shapes.sys").is_err());
    // A store element is never searched flat: names alone never match.
    assert!(t
        .spath("srv*DIR")
        .find_pdb(&shapes_id(), "shapes.sys")
        .is_err());
}

#[test]
fn file_ptr_redirection_and_compressed_files() {
    let t = TempDir::new("ptr");
    let real = t.put("elsewhere/shapes.pdb");
    let keydir = t.0.join("shapes.pdb/1CA6159EF8B201A24C4C44205044422E1");
    fs::create_dir_all(&keydir).unwrap();
    fs::write(keydir.join("file.ptr"), format!("PATH:{}", real.display())).unwrap();
    assert_eq!(
        t.spath("srv*DIR")
            .find_pdb(&shapes_id(), "shapes.sys")
            .unwrap(),
        real
    );
    fs::remove_file(keydir.join("file.ptr")).unwrap();
    fs::write(keydir.join("shapes.pd_"), b"MSCF").unwrap();
    let e = t
        .spath("srv*DIR")
        .find_pdb(&shapes_id(), "shapes.sys")
        .unwrap_err();
    assert!(
        e.looked.iter().any(|l| l.outcome.contains("compressed")),
        "{:?}",
        e.looked
    );
}

#[test]
fn missing_pdb_message_snapshot() {
    let id = PdbId {
        name: "tcpip.pdb".into(),
        guid: [
            0xB9, 0xDB, 0x44, 0x38, 0x17, 0x20, 0x67, 0x49, 0xBE, 0x7A, 0xA4, 0xA2, 0xC2, 0x04,
            0x30, 0xFA,
        ],
        age: 2,
    };
    let path = SymbolPath::parse(
        r"srv*Q:\no-such-cache*https://msdl.microsoft.com/download/symbols;Q:\no-such-flat",
    );
    let e = path.find_pdb(&id, "tcpip.sys").unwrap_err();
    let sep = if cfg!(windows) { '\\' } else { '/' };
    let want = r#"no symbols for tcpip.sys: it needs tcpip.pdb with GUID {3844DBB9-2017-4967-BE7A-A4A2C20430FA} and age 2 (store key 3844DBB920174967BE7AA4A2C20430FA2), and no local symbol store has it.
Looked in (symbol path "srv*Q:\no-such-cache*https://msdl.microsoft.com/download/symbols;Q:\no-such-flat"):
  Q:/no-such-cache: directory does not exist
  Q:/no-such-flat: directory does not exist
  Q:/no-such-flat/tcpip.pdb: not present
portleak never downloads symbols. Fetch this exact file:
  https://msdl.microsoft.com/download/symbols/tcpip.pdb/3844DBB920174967BE7AA4A2C20430FA2/tcpip.pdb
and save it as Q:\no-such-cache\tcpip.pdb\3844DBB920174967BE7AA4A2C20430FA2\tcpip.pdb, or on a Windows machine with the same tcpip.sys build run:
  symchk /r C:\Windows\System32\drivers\tcpip.sys /s srv*Q:\no-such-cache*https://msdl.microsoft.com/download/symbols
then run again with --symbols "srv*Q:\no-such-cache"."#;
    assert_eq!(e.to_string(), want.replace("Q:/", &format!("Q:{sep}")));
}

#[test]
fn missing_pdb_with_an_empty_path_says_so_and_suggests_defaults() {
    let e = SymbolPath::parse("")
        .find_pdb(&shapes_id(), "ntoskrnl.exe")
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("The symbol path is empty"), "{text}");
    assert!(text.contains(r"symchk /r C:\Windows\System32\ntoskrnl.exe /s srv*C:\symbols*https://msdl.microsoft.com/download/symbols"), "{text}");
    assert_eq!(e.url(), "https://msdl.microsoft.com/download/symbols/shapes.pdb/1CA6159EF8B201A24C4C44205044422E1/shapes.pdb");
}
