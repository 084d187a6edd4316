//! Readers shared by the fakemods tests: the committed manifests, and what the
//! `pdb` crate finds in the committed PDBs, in the same shape for comparison.

use std::collections::BTreeMap;
use std::error::Error;
use std::fs::File;
use std::path::{Path, PathBuf};

use pdb::{FallibleIterator, SymbolData, TypeData, TypeFinder, TypeIndex, PDB};
use serde_json::Value;

pub type TestResult = Result<(), Box<dyn Error>>;

pub const BUILDS: [u32; 5] = [7601, 17763, 19041, 20348, 22621];
pub const MODULES: [&str; 3] = ["ntoskrnl", "tcpip", "afd"];

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/modules")
}

pub fn manifest(build: u32) -> Result<Value, Box<dyn Error>> {
    let path = fixtures().join(build.to_string()).join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

pub fn module<'a>(m: &'a Value, key: &str) -> &'a Value {
    &m["modules"][key]
}

pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("manifest field {key} is not a string"))
}

pub fn u64_of(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("manifest field {key} is not an integer"))
}

pub fn open_pdb(build: u32, m: &Value) -> Result<PDB<'static, File>, Box<dyn Error>> {
    let path = fixtures().join(build.to_string()).join(str_of(m, "pdb"));
    let file = File::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    Ok(PDB::open(file)?)
}

pub fn read_image(build: u32, m: &Value) -> Result<Vec<u8>, Box<dyn Error>> {
    let path = fixtures().join(build.to_string()).join(str_of(m, "file"));
    Ok(std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?)
}

/// One structure or union as the PDB describes it, members flattened the way
/// the manifest spells them: embedded structs contribute `Outer.Inner` names.
#[derive(Debug, PartialEq)]
pub struct TypeView {
    pub kind: &'static str,
    pub size: u64,
    pub fields: BTreeMap<String, u64>,
}

/// Complete (non-forward-reference) records by name, from the TPI stream.
pub fn pdb_types(
    pdb: &mut PDB<'static, File>,
) -> Result<BTreeMap<String, TypeView>, Box<dyn Error>> {
    let tpi = pdb.type_information()?;
    let mut finder = tpi.finder();
    let mut iter = tpi.iter();
    let mut complete: BTreeMap<String, TypeIndex> = BTreeMap::new();
    while let Some(item) = iter.next()? {
        finder.update(&iter);
        let (name, forward) = match item.parse() {
            Ok(TypeData::Class(c)) => (
                c.name.to_string().into_owned(),
                c.properties.forward_reference(),
            ),
            Ok(TypeData::Union(u)) => (
                u.name.to_string().into_owned(),
                u.properties.forward_reference(),
            ),
            _ => continue,
        };
        if !forward {
            complete.insert(name, item.index());
        }
    }
    let mut out = BTreeMap::new();
    for (name, &index) in &complete {
        let (kind, size) = match finder.find(index)?.parse()? {
            TypeData::Class(c) => ("struct", c.size),
            TypeData::Union(u) => ("union", u.size),
            other => return Err(format!("{name}: unexpected record {other:?}").into()),
        };
        let mut fields = BTreeMap::new();
        flatten(&finder, &complete, index, "", 0, &mut fields, 0)?;
        out.insert(name.clone(), TypeView { kind, size, fields });
    }
    Ok(out)
}

pub fn flatten(
    finder: &TypeFinder<'_>,
    complete: &BTreeMap<String, TypeIndex>,
    index: TypeIndex,
    prefix: &str,
    base: u64,
    out: &mut BTreeMap<String, u64>,
    depth: usize,
) -> TestResult {
    // Only embedded structs are followed (never pointers), so a cycle cannot
    // occur in a well-formed PDB; the bound guards against a corrupt one.
    if depth > 8 {
        return Err(format!("type nesting deeper than 8 at {prefix}").into());
    }
    let mut next = match finder.find(index)?.parse()? {
        TypeData::Class(c) => c.fields,
        TypeData::Union(u) => Some(u.fields),
        _ => None,
    };
    while let Some(list_index) = next {
        let TypeData::FieldList(list) = finder.find(list_index)?.parse()? else {
            return Err(format!("{prefix}: field list {list_index} is not LF_FIELDLIST").into());
        };
        for field in list.fields {
            let TypeData::Member(m) = field else { continue };
            let name = m.name.to_string();
            // The generator's filler arrays are not part of the intended layout.
            if name.starts_with("_Padding") {
                continue;
            }
            let dotted = format!("{prefix}{name}");
            out.insert(dotted.clone(), base + m.offset);
            if let Some(inner) = embedded_struct(finder, complete, m.field_type) {
                flatten(
                    finder,
                    complete,
                    inner,
                    &format!("{dotted}."),
                    base + m.offset,
                    out,
                    depth + 1,
                )?;
            }
        }
        next = list.continuation;
    }
    Ok(())
}

/// The complete definition of a member's type when it is an embedded struct.
pub fn embedded_struct(
    finder: &TypeFinder<'_>,
    complete: &BTreeMap<String, TypeIndex>,
    ty: TypeIndex,
) -> Option<TypeIndex> {
    // Indexes below 0x1000 are CodeView primitives with no record.
    if ty.0 < 0x1000 {
        return None;
    }
    match finder.find(ty).ok()?.parse().ok()? {
        TypeData::Class(c) if c.kind == pdb::ClassKind::Struct => {
            complete.get(c.name.to_string().as_ref()).copied()
        }
        _ => None,
    }
}

pub struct Public {
    pub rva: u64,
    pub function: bool,
}

pub fn pdb_publics(
    pdb: &mut PDB<'static, File>,
) -> Result<BTreeMap<String, Public>, Box<dyn Error>> {
    let map = pdb.address_map()?;
    let symbols = pdb.global_symbols()?;
    let mut iter = symbols.iter();
    let mut out = BTreeMap::new();
    while let Some(sym) = iter.next()? {
        if let Ok(SymbolData::Public(p)) = sym.parse() {
            let name = p.name.to_string().into_owned();
            let rva = p
                .offset
                .to_rva(&map)
                .ok_or_else(|| format!("public {name} has no RVA"))?;
            out.insert(
                name,
                Public {
                    rva: u64::from(rva.0),
                    function: p.function,
                },
            );
        }
    }
    Ok(out)
}

pub fn guid_text(fields: (u32, u16, u16, &[u8; 8])) -> String {
    let (d1, d2, d3, d4) = fields;
    format!(
        "{{{d1:08X}-{d2:04X}-{d3:04X}-{:02X}{:02X}-{}}}",
        d4[0],
        d4[1],
        d4[2..]
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<String>()
    )
}
