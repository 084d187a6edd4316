//! Random access to the TPI stream's type records, decoded on demand.
//!
//! The `pdb` crate delivers the stream (MSF container, stream directory); the records are decoded
//! here, following cvinfo.h, for three reasons measured or found while building this:
//! - its `TypeFinder` borrows the `TypeInformation` it indexes and must be rebuilt by a full pass
//!   for every use, and neither is `Send`, so nothing of it can live in a shared `Arc<Pdb>`; one
//!   rebuild per queried type cost about 5 ms each on the benchmark's 5 MB PDB;
//! - it misreads `LF_INDEX` continuations (see fieldlist.rs) and then drops whole member lists;
//! - a struct lookup needs five record kinds, all short and fixed by cvinfo.h.
//!
//! One pass at the first type query records where every record starts and the index of every
//! complete struct/union/enum by name; each query afterwards decodes only the records it walks.

use super::fieldlist::{self, Leaf};
use super::names::NameIndex;
use super::nodes::{Member, Node, UdtKind};

const LF_MODIFIER: u16 = 0x1001;
const LF_POINTER: u16 = 0x1002;
const LF_PROCEDURE: u16 = 0x1008;
const LF_MFUNCTION: u16 = 0x1009;
const LF_BITFIELD: u16 = 0x1205;
const LF_ARRAY: u16 = 0x1503;
const LF_CLASS: u16 = 0x1504;
const LF_STRUCTURE: u16 = 0x1505;
const LF_UNION: u16 = 0x1506;
const LF_ENUM: u16 = 0x1507;
const LF_INTERFACE: u16 = 0x1519;
const LF_STRIDED_ARRAY: u16 = 0x1516;
/// `CV_prop_t.fwdref`.
const PROP_FWDREF: u16 = 0x0080;
/// `CV_prop_t.hasuniquename`.
const PROP_UNIQUE: u16 = 0x0200;
/// Field-list continuations followed per struct (real lists continue a handful of times).
const MAX_CONTINUATIONS: usize = 4096;

/// The TPI stream with the position of every record and the definitions by name.
#[derive(Debug)]
pub(crate) struct Tpi {
    data: Vec<u8>,
    first: u32,
    offsets: Vec<u32>,
    names: NameIndex,
    uniques: NameIndex,
}

impl Tpi {
    /// Indexes the TPI stream bytes (header per LLVM's TpiStream.rst: version, header size, first
    /// and end type index, record bytes, ...).
    pub fn index(data: Vec<u8>) -> Result<Tpi, String> {
        let head = |at: usize| {
            data.get(at..at + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let (Some(header_size), Some(first), Some(end)) = (head(4), head(8), head(12)) else {
            return Err(format!(
                "the type stream is {} bytes, too short for its header",
                data.len()
            ));
        };
        let count = end
            .checked_sub(first)
            .ok_or_else(|| format!("type index range {first:#x}..{end:#x} is inverted"))?;
        // The record count comes from the file; the stream length bounds it (4 bytes per record
        // at least), so a corrupt header cannot make us reserve gigabytes.
        let mut offsets = Vec::with_capacity((count as usize).min(data.len() / 4));
        let mut pos = header_size as usize;
        while pos + 4 <= data.len() && offsets.len() < count as usize {
            offsets.push(pos as u32);
            pos += 2 + usize::from(u16::from_le_bytes([data[pos], data[pos + 1]]));
        }
        let mut tpi = Tpi {
            data,
            first,
            offsets,
            names: NameIndex::default(),
            uniques: NameIndex::default(),
        };
        let (mut names, mut uniques) = (NameIndex::default(), NameIndex::default());
        for i in 0..tpi.offsets.len() as u32 {
            let ti = first + i;
            let Some(rec) = tpi.record(ti) else { continue };
            if !matches!(
                kind(rec),
                LF_CLASS | LF_STRUCTURE | LF_UNION | LF_ENUM | LF_INTERFACE
            ) {
                continue;
            }
            if let Node::Udt {
                name,
                unique,
                forward: false,
                ..
            }
            | Node::Enum {
                name,
                unique,
                forward: false,
                ..
            } = tpi.node(ti)
            {
                // The first definition wins; duplicates from different object files are identical.
                if !is_anonymous_name(&name) {
                    names.push(name.as_bytes(), ti);
                }
                if let Some(u) = unique {
                    uniques.push(u.as_bytes(), ti);
                }
            }
        }
        tpi.names = names.finish();
        tpi.uniques = uniques.finish();
        Ok(tpi)
    }

    /// A PDB without a type stream.
    pub fn empty() -> Tpi {
        Tpi {
            data: Vec::new(),
            first: 0x1000,
            offsets: Vec::new(),
            names: NameIndex::default(),
            uniques: NameIndex::default(),
        }
    }

    /// Number of type records.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// The index defining `name` (a complete struct, union or enum).
    pub fn by_name(&self, name: &str) -> Option<u32> {
        self.names.get(name)
    }

    /// The definition a forward reference stands for: by decorated name when it has one, else by
    /// name unless the name is an anonymous placeholder.
    pub fn definition(&self, name: &str, unique: Option<&str>) -> Option<u32> {
        match unique {
            Some(u) => self.uniques.get(u),
            None if is_anonymous_name(name) => None,
            None => self.by_name(name),
        }
    }

    /// The record of `ti`, starting with its leaf kind.
    fn record(&self, ti: u32) -> Option<&[u8]> {
        let pos = *self.offsets.get(ti.checked_sub(self.first)? as usize)? as usize;
        let len = usize::from(u16::from_le_bytes([
            *self.data.get(pos)?,
            *self.data.get(pos + 1)?,
        ]));
        self.data.get(pos + 2..pos + 2 + len)
    }

    /// Decodes the record `ti` (primitive indexes below 0x1000 included).
    pub fn node(&self, ti: u32) -> Node {
        if ti < 0x1000 {
            return primitive(ti);
        }
        let Some(rec) = self.record(ti) else {
            return Node::Other {
                what: format!("type index {ti:#x} is outside the type stream"),
            };
        };
        decode(rec).unwrap_or_else(|| Node::Other {
            what: format!(
                "type record {ti:#x} (kind {:#06x}) cannot be read",
                kind(rec)
            ),
        })
    }

    /// The members of a struct or union from its field list chain, and why the list may be
    /// incomplete. Nested type declarations, methods and statics carry no layout and are skipped.
    pub fn members(&self, first: u32) -> (Vec<Member>, Option<String>) {
        let mut out = Vec::new();
        let mut next = Some(first);
        let mut seen = Vec::new();
        while let Some(ti) = next.take() {
            if seen.contains(&ti) || seen.len() >= MAX_CONTINUATIONS {
                return (out, Some(format!("field list {ti:#x} continues in a loop")));
            }
            seen.push(ti);
            let Some(rec) = self.record(ti) else {
                return (
                    out,
                    Some(format!("field list {ti:#x} is outside the type stream")),
                );
            };
            match fieldlist::parse(rec) {
                Ok((members, cont)) => {
                    out.extend(members);
                    next = cont;
                }
                Err((members, why)) => {
                    out.extend(members);
                    return (out, Some(why));
                }
            }
        }
        (out, None)
    }
}

fn kind(rec: &[u8]) -> u16 {
    if rec.len() < 2 {
        return 0;
    }
    u16::from_le_bytes([rec[0], rec[1]])
}

/// Decodes the record kinds a layout walk needs; others become `Other` or `Procedure`.
fn decode(rec: &[u8]) -> Option<Node> {
    let mut c = Leaf::new(rec);
    let leaf = c.u16()?;
    Some(match leaf {
        // lfClass: count, property, field, derived, vshape, size (numeric), name.
        LF_CLASS | LF_STRUCTURE | LF_INTERFACE => {
            c.u16()?;
            let prop = c.u16()?;
            let fields = c.u32()?;
            c.u32()?;
            c.u32()?;
            let size = c.numeric()?;
            let kind = match leaf {
                LF_CLASS => UdtKind::Class,
                LF_INTERFACE => UdtKind::Interface,
                _ => UdtKind::Struct,
            };
            let forward = prop & PROP_FWDREF != 0;
            Node::Udt {
                kind,
                name: c.name()?,
                unique: unique_name(&mut c, prop),
                size,
                forward,
                fields: (fields != 0 && !forward).then_some(fields),
            }
        }
        // lfUnion: count, property, field, size (numeric), name.
        LF_UNION => {
            c.u16()?;
            let prop = c.u16()?;
            let fields = c.u32()?;
            let size = c.numeric()?;
            let forward = prop & PROP_FWDREF != 0;
            Node::Udt {
                kind: UdtKind::Union,
                name: c.name()?,
                unique: unique_name(&mut c, prop),
                size,
                forward,
                fields: (fields != 0 && !forward).then_some(fields),
            }
        }
        // lfEnum: count, property, underlying type, field, name.
        LF_ENUM => {
            c.u16()?;
            let prop = c.u16()?;
            let underlying = c.u32()?;
            c.u32()?;
            Node::Enum {
                name: c.name()?,
                unique: unique_name(&mut c, prop),
                underlying,
                forward: prop & PROP_FWDREF != 0,
            }
        }
        // lfPointer: referent, attributes (size in bits 13..18, else implied by the kind in 0..4).
        LF_POINTER => {
            let target = c.u32()?;
            let attr = c.u32()?;
            let size = match (attr >> 13) & 0x3f {
                0 => match attr & 0x1f {
                    0x0c => 8,        // CV_PTR_64
                    0x0a | 0x0b => 4, // CV_PTR_NEAR32, CV_PTR_FAR32
                    _ => 0,
                },
                n => n,
            };
            Node::Pointer {
                size: u64::from(size),
                target,
            }
        }
        LF_MODIFIER => Node::Modifier { target: c.u32()? },
        // lfArray: element type, index type, size in bytes (numeric), name.
        LF_ARRAY => {
            let elem = c.u32()?;
            c.u32()?;
            Node::Array {
                elem,
                size: c.numeric()?,
            }
        }
        LF_STRIDED_ARRAY => {
            let elem = c.u32()?;
            c.u32()?;
            c.u32()?;
            Node::Array {
                elem,
                size: c.numeric()?,
            }
        }
        // lfBitfield: underlying type, length, position.
        LF_BITFIELD => {
            let underlying = c.u32()?;
            let length = c.u8()?;
            Node::Bitfield {
                underlying,
                position: c.u8()?,
                length,
            }
        }
        LF_PROCEDURE | LF_MFUNCTION => Node::Procedure,
        other => Node::Other {
            what: format!("type record kind {other:#06x}"),
        },
    })
}

/// The decorated name that follows the name when `CV_prop_t.hasuniquename` (0x200) is set.
fn unique_name(c: &mut Leaf<'_>, prop: u16) -> Option<String> {
    (prop & PROP_UNIQUE != 0).then(|| c.name()).flatten()
}

/// Names compilers give anonymous types; they identify nothing, so nothing resolves by them.
pub(crate) fn is_anonymous_name(name: &str) -> bool {
    name.is_empty()
        || name.contains("<unnamed-tag>")
        || name.contains("<anonymous-tag>")
        || name.contains("__unnamed")
}

/// Primitive type indexes (cvinfo.h "special types"): the low byte is the type, bits 8..11 the
/// pointer mode (0 = not a pointer).
fn primitive(ti: u32) -> Node {
    let mode = (ti >> 8) & 0xf;
    if mode != 0 {
        let size = match mode {
            1 => 2,     // near 16
            2..=4 => 4, // far 16, huge 16, near 32
            5 => 6,     // far 32
            6 => 8,     // near 64
            7 => 16,    // near 128
            _ => 0,
        };
        return Node::Primitive {
            name: "pointer",
            size,
        };
    }
    let (name, size) = match ti & 0xff {
        0x00 => ("<no type>", 0),
        0x03 => ("void", 0),
        0x08 => ("HRESULT", 4),
        0x10 | 0x70 => ("char", 1),
        0x20 => ("unsigned char", 1),
        0x68 => ("__int8", 1),
        0x69 => ("unsigned __int8", 1),
        0x30 => ("bool", 1),
        0x71 => ("wchar_t", 2),
        0x7a => ("char16_t", 2),
        0x7b => ("char32_t", 4),
        0x11 | 0x72 => ("short", 2),
        0x21 | 0x73 => ("unsigned short", 2),
        0x31 => ("__bool16", 2),
        0x46 => ("half", 2),
        0x12 => ("long", 4),
        0x22 => ("unsigned long", 4),
        0x74 => ("int", 4),
        0x75 => ("unsigned int", 4),
        0x32 => ("__bool32", 4),
        0x40 | 0x45 => ("float", 4),
        0x44 => ("__float48", 6),
        0x13 | 0x76 => ("__int64", 8),
        0x23 | 0x77 => ("unsigned __int64", 8),
        0x33 => ("__bool64", 8),
        0x41 => ("double", 8),
        0x50 => ("_Complex float", 8),
        0x42 => ("long double", 10),
        0x14 | 0x78 => ("__int128", 16),
        0x24 | 0x79 => ("unsigned __int128", 16),
        0x43 => ("__float128", 16),
        0x51 => ("_Complex double", 16),
        0x52 => ("_Complex long double", 20),
        0x53 => ("_Complex __float128", 32),
        _ => ("<unknown primitive>", 0),
    };
    Node::Primitive { name, size }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdb::resolve::{walk, Types};

    const LF_FIELDLIST: u16 = 0x1203;
    const LF_MEMBER: u16 = 0x150d;

    fn cstr(v: &mut Vec<u8>, s: &str) {
        v.extend_from_slice(s.as_bytes());
        v.push(0);
    }

    fn fieldlist(members: &[(&str, u32, u16)]) -> Vec<u8> {
        let mut v = LF_FIELDLIST.to_le_bytes().to_vec();
        for (name, ty, off) in members {
            v.extend_from_slice(&LF_MEMBER.to_le_bytes());
            v.extend_from_slice(&3u16.to_le_bytes());
            v.extend_from_slice(&ty.to_le_bytes());
            v.extend_from_slice(&off.to_le_bytes());
            cstr(&mut v, name);
        }
        v
    }

    fn structure(
        name: &str,
        unique: Option<&str>,
        fields: u32,
        size: u16,
        forward: bool,
    ) -> Vec<u8> {
        let mut prop = if forward { PROP_FWDREF } else { 0 };
        if unique.is_some() {
            prop |= PROP_UNIQUE;
        }
        let mut v = LF_STRUCTURE.to_le_bytes().to_vec();
        v.extend_from_slice(&0u16.to_le_bytes());
        v.extend_from_slice(&prop.to_le_bytes());
        v.extend_from_slice(&fields.to_le_bytes());
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(&size.to_le_bytes());
        cstr(&mut v, name);
        if let Some(u) = unique {
            cstr(&mut v, u);
        }
        v
    }

    /// A TPI stream: the 56-byte header (version, header size, first and end index, ...), then
    /// each record behind its 16-bit length.
    fn stream(records: &[Vec<u8>]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [20040203u32, 56, 0x1000, 0x1000 + records.len() as u32] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.resize(56, 0);
        for r in records {
            v.extend_from_slice(&(r.len() as u16).to_le_bytes());
            v.extend_from_slice(r);
        }
        v
    }

    #[test]
    fn anonymous_types_resolve_by_unique_name_not_by_their_shared_name() {
        // MSVC names every anonymous type `<unnamed-tag>`; two of them here, forward-referenced,
        // defined in the opposite order. Resolving by name would send both to the first.
        let tpi = Tpi::index(stream(&[
            fieldlist(&[("A", 0x22, 0), ("B", 0x22, 4)]), // 0x1000
            structure("<unnamed-tag>", Some(".?AU<a>@@"), 0, 0, true), // 0x1001
            structure("<unnamed-tag>", Some(".?AU<b>@@"), 0, 0, true), // 0x1002
            fieldlist(&[("X", 0x23, 0)]),                 // 0x1003
            structure("<unnamed-tag>", Some(".?AU<b>@@"), 0x1003, 8, false), // 0x1004
            structure("<unnamed-tag>", Some(".?AU<a>@@"), 0x1000, 8, false), // 0x1005
            fieldlist(&[("First", 0x1001, 0), ("Second", 0x1002, 8)]), // 0x1006
            structure("_OUTER", None, 0x1006, 16, false), // 0x1007
        ]))
        .unwrap();
        assert_eq!(tpi.len(), 8);
        assert_eq!(tpi.by_name("_OUTER"), Some(0x1007));
        assert_eq!(tpi.by_name("<unnamed-tag>"), None);
        let t = Types {
            tpi: &tpi,
            typedefs: None,
        };
        assert_eq!(walk(&t, 0x1007, "_OUTER", "First.B").unwrap().offset, 4);
        assert_eq!(walk(&t, 0x1007, "_OUTER", "Second.X").unwrap().offset, 8);
        assert!(walk(&t, 0x1007, "_OUTER", "Second.B").is_err());
    }

    #[test]
    fn truncated_or_inverted_streams_are_errors_and_bad_records_are_other() {
        assert!(Tpi::index(vec![0; 10]).is_err());
        let mut inverted = stream(&[]);
        inverted[12..16].copy_from_slice(&0x0fffu32.to_le_bytes());
        assert!(Tpi::index(inverted).is_err());
        // A record cut short decodes as Other instead of being misread.
        let mut cut = structure("_S", None, 0, 8, false);
        cut.truncate(8);
        let tpi = Tpi::index(stream(&[cut])).unwrap();
        assert!(matches!(tpi.node(0x1000), Node::Other { .. }));
        assert!(matches!(tpi.node(0x2000), Node::Other { .. }));
        assert_eq!(
            tpi.node(0x0022),
            Node::Primitive {
                name: "unsigned long",
                size: 4
            }
        );
        assert_eq!(
            tpi.node(0x0622),
            Node::Primitive {
                name: "pointer",
                size: 8
            }
        );
    }
}
