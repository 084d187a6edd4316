//! Owned copies of the TPI records a query touched, and the pass that loads them.
//!
//! `pdb` 0.8 only gives random access through a `TypeFinder` that borrows the stream it indexes and
//! must be fed by one full iteration. A load therefore opens the stream, iterates once (also
//! recording every complete struct/union/enum by name the first time), converts what was asked
//! for, and drops the borrowed objects again; the owned nodes stay.

use std::cell::OnceCell;
use std::collections::{HashMap, HashSet};
use std::io::Cursor;
use std::path::Path;

use ::pdb::{FallibleIterator, TypeData, TypeFinder, TypeIndex};

use super::fieldlist::{self, RawTpi};
use super::resolve::{self, Walk};
use super::{FieldInfo, PdbError};

/// A struct/union member (or base class) as the walk needs it.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub name: String,
    pub offset: u64,
    pub ty: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UdtKind {
    Struct,
    Class,
    Union,
    Interface,
}

/// One type record, owned.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Primitive {
        name: &'static str,
        size: u64,
    },
    /// `members` is `None` when only the name was needed (the target of a pointer); `damaged`
    /// says why the member list may be incomplete.
    Udt {
        kind: UdtKind,
        name: String,
        size: u64,
        forward: bool,
        members: Option<Vec<Member>>,
        damaged: Option<String>,
    },
    Enum {
        name: String,
        underlying: u32,
        forward: bool,
    },
    Pointer {
        size: u64,
        target: u32,
    },
    Modifier {
        target: u32,
    },
    /// `size` is the whole array in bytes (CodeView stores byte sizes, not counts).
    Array {
        elem: u32,
        size: u64,
    },
    Bitfield {
        underlying: u32,
        position: u8,
        length: u8,
    },
    Procedure,
    Other {
        what: String,
    },
}

/// Records converted by one load before it gives up: far above any real closure (an `_EPROCESS`
/// closure in a Windows 11 kernel PDB is a few hundred records), low enough to bound a corrupt
/// type graph.
const MAX_LOAD: usize = 200_000;
/// Field-list continuations followed per struct (real lists continue a handful of times).
const MAX_CONTINUATIONS: usize = 4096;

#[derive(Debug, Default)]
pub(crate) struct TypeState {
    /// Complete struct/union/enum name → index, built on the first load.
    names: Option<HashMap<String, u32>>,
    nodes: HashMap<u32, Node>,
    /// Indexes whose embedded closure is loaded.
    deep: HashSet<u32>,
    /// How many times the TPI stream was opened and indexed (for tests and benchmarks).
    pub loads: usize,
}

impl TypeState {
    pub fn resolve(
        &mut self,
        bytes: &[u8],
        path: &Path,
        pdb_name: &str,
        typedefs: Option<&HashMap<String, u32>>,
        ty: &str,
        field: &str,
    ) -> Result<FieldInfo, PdbError> {
        let mut need: Option<u32> = None;
        // A walk that hits an unloaded record asks for it; each round loads a closure, so a few
        // rounds settle any real graph and the bound stops a pathological one.
        for _ in 0..8 {
            if let Some(names) = &self.names {
                let root = lookup(names, typedefs, ty).ok_or_else(|| PdbError::NoType {
                    pdb: pdb_name.to_string(),
                    ty: ty.to_string(),
                })?;
                match resolve::walk(&self.nodes, names, root, ty, field) {
                    Ok(info) => return Ok(info),
                    Err(Walk::Missing(ti)) => need = Some(ti),
                    Err(Walk::Failed(e)) => return Err(e),
                }
            }
            self.load(bytes, path, typedefs, ty, need)?;
        }
        Err(PdbError::Format {
            path: path.display().to_string(),
            detail: format!("the type graph of {ty} does not resolve (cyclic or corrupt records)"),
        })
    }

    fn load(
        &mut self,
        bytes: &[u8],
        path: &Path,
        typedefs: Option<&HashMap<String, u32>>,
        ty: &str,
        need: Option<u32>,
    ) -> Result<(), PdbError> {
        let fmt = |e: ::pdb::Error| PdbError::Format {
            path: path.display().to_string(),
            detail: e.to_string(),
        };
        let mut pdb = ::pdb::PDB::open(Cursor::new(bytes)).map_err(fmt)?;
        let info = pdb.type_information().map_err(fmt)?;
        let mut finder = info.finder();
        let mut iter = info.iter();
        let mut names = if self.names.is_none() {
            Some(HashMap::new())
        } else {
            None
        };
        while let Some(item) = iter.next().map_err(fmt)? {
            finder.update(&iter);
            if let Some(names) = names.as_mut() {
                index_name(names, &item);
            }
        }
        self.loads += 1;
        if let Some(n) = names {
            self.names = Some(n);
        }
        let names = self.names.as_ref().expect("set above");
        let mut roots: Vec<u32> = need.into_iter().collect();
        if let Some(r) = lookup(names, typedefs, ty) {
            roots.push(r);
        }
        let ctx = Ctx {
            finder: &finder,
            bytes,
            raw: OnceCell::new(),
        };
        let mut budget = MAX_LOAD;
        for root in roots {
            load_closure(
                &ctx,
                names,
                &mut self.nodes,
                &mut self.deep,
                root,
                &mut budget,
            );
        }
        Ok(())
    }
}

/// Finds a type by its tag name, or else by a typedef naming it (`EPROCESS` → `_EPROCESS`).
fn lookup(
    names: &HashMap<String, u32>,
    typedefs: Option<&HashMap<String, u32>>,
    ty: &str,
) -> Option<u32> {
    names
        .get(ty)
        .copied()
        .or_else(|| typedefs?.get(ty).copied())
}

/// Leaf kinds of struct/class/union/enum/interface records, current and older (`_ST`, 16-bit).
fn is_udt_kind(kind: u16) -> bool {
    matches!(kind, 0x1504..=0x1507 | 0x1519 | 0x1004..=0x1007 | 0x0004..=0x0007)
}

fn index_name(names: &mut HashMap<String, u32>, item: &::pdb::Type<'_>) {
    if !is_udt_kind(item.raw_kind()) {
        return;
    }
    let (name, forward) = match item.parse() {
        Ok(TypeData::Class(c)) => (c.name, c.properties.forward_reference()),
        Ok(TypeData::Union(u)) => (u.name, u.properties.forward_reference()),
        Ok(TypeData::Enumeration(e)) => (e.name, e.properties.forward_reference()),
        _ => return,
    };
    if !forward {
        // The first definition wins; duplicates from different object files are identical.
        names
            .entry(name.to_string().into_owned())
            .or_insert(item.index().0);
    }
}

/// What converting records needs: the crate's finder, and our raw view of the TPI stream for the
/// field lists the crate cannot read (opened only if one turns up).
struct Ctx<'a, 't> {
    finder: &'a TypeFinder<'t>,
    bytes: &'a [u8],
    raw: OnceCell<Option<RawTpi>>,
}

fn load_closure(
    ctx: &Ctx<'_, '_>,
    names: &HashMap<String, u32>,
    nodes: &mut HashMap<u32, Node>,
    deep: &mut HashSet<u32>,
    root: u32,
    budget: &mut usize,
) {
    let mut work: Vec<(u32, bool)> = vec![(root, true)];
    while let Some((ti, want_deep)) = work.pop() {
        if *budget == 0 {
            return;
        }
        let have_deep = deep.contains(&ti);
        if have_deep || (!want_deep && nodes.contains_key(&ti)) {
            continue;
        }
        *budget -= 1;
        let node = convert(ctx, ti, want_deep);
        let (deep_next, shallow_next) = edges(&node, names);
        nodes.insert(ti, node);
        if want_deep {
            deep.insert(ti);
            work.extend(deep_next.into_iter().map(|t| (t, true)));
        }
        work.extend(shallow_next.into_iter().map(|t| (t, false)));
    }
}

/// Types embedded in a node (loaded deep) and types it only names (loaded shallow).
fn edges(node: &Node, names: &HashMap<String, u32>) -> (Vec<u32>, Vec<u32>) {
    match node {
        Node::Udt {
            forward: true,
            name,
            ..
        }
        | Node::Enum {
            forward: true,
            name,
            ..
        } => (names.get(name).copied().into_iter().collect(), Vec::new()),
        Node::Udt {
            members: Some(m), ..
        } => (m.iter().map(|m| m.ty).collect(), Vec::new()),
        Node::Enum { underlying, .. } => (vec![*underlying], Vec::new()),
        Node::Modifier { target } => (vec![*target], Vec::new()),
        Node::Array { elem, .. } => (vec![*elem], Vec::new()),
        Node::Bitfield { underlying, .. } => (vec![*underlying], Vec::new()),
        Node::Pointer { target, .. } => (Vec::new(), vec![*target]),
        _ => (Vec::new(), Vec::new()),
    }
}

fn convert(ctx: &Ctx<'_, '_>, ti: u32, deep: bool) -> Node {
    let data = match ctx.finder.find(TypeIndex(ti)).and_then(|t| t.parse()) {
        Ok(d) => d,
        Err(e) => {
            return Node::Other {
                what: format!("type record {ti:#x} cannot be read ({e})"),
            }
        }
    };
    match data {
        TypeData::Primitive(p) => primitive(&p),
        TypeData::Class(c) => {
            let forward = c.properties.forward_reference();
            let kind = match c.kind {
                ::pdb::ClassKind::Class => UdtKind::Class,
                ::pdb::ClassKind::Struct => UdtKind::Struct,
                ::pdb::ClassKind::Interface => UdtKind::Interface,
            };
            let (members, damaged) = if deep && !forward {
                members(ctx, c.fields)
            } else {
                (None, None)
            };
            Node::Udt {
                kind,
                name: c.name.to_string().into_owned(),
                size: c.size,
                forward,
                members,
                damaged,
            }
        }
        TypeData::Union(u) => {
            let forward = u.properties.forward_reference();
            let (members, damaged) = if deep && !forward {
                members(ctx, Some(u.fields))
            } else {
                (None, None)
            };
            Node::Udt {
                kind: UdtKind::Union,
                name: u.name.to_string().into_owned(),
                size: u.size,
                forward,
                members,
                damaged,
            }
        }
        TypeData::Enumeration(e) => Node::Enum {
            name: e.name.to_string().into_owned(),
            underlying: e.underlying_type.0,
            forward: e.properties.forward_reference(),
        },
        TypeData::Pointer(p) => Node::Pointer {
            size: u64::from(p.attributes.size()),
            target: p.underlying_type.0,
        },
        TypeData::Modifier(m) => Node::Modifier {
            target: m.underlying_type.0,
        },
        TypeData::Array(a) => Node::Array {
            elem: a.element_type.0,
            size: a.dimensions.last().map_or(0, |d| u64::from(*d)),
        },
        TypeData::Bitfield(b) => Node::Bitfield {
            underlying: b.underlying_type.0,
            position: b.position,
            length: b.length,
        },
        TypeData::Procedure(_) | TypeData::MemberFunction(_) => Node::Procedure,
        other => Node::Other {
            what: format!("{:?}", std::mem::discriminant(&other)),
        },
    }
}

/// Members of a field list chain; nested type declarations, methods and statics carry no layout.
/// The second value says why the list may be incomplete.
fn members(ctx: &Ctx<'_, '_>, first: Option<TypeIndex>) -> (Option<Vec<Member>>, Option<String>) {
    let mut out = Vec::new();
    let mut next = first.map(|t| t.0);
    let mut seen = HashSet::new();
    while let Some(ti) = next.take() {
        if !seen.insert(ti) || seen.len() > MAX_CONTINUATIONS {
            return (
                Some(out),
                Some(format!("field list {ti:#x} continues in a loop")),
            );
        }
        match ctx.finder.find(TypeIndex(ti)).and_then(|t| t.parse()) {
            Ok(TypeData::FieldList(list)) => {
                for f in list.fields {
                    match f {
                        TypeData::Member(m) => out.push(Member {
                            name: m.name.to_string().into_owned(),
                            offset: m.offset,
                            ty: m.field_type.0,
                        }),
                        TypeData::BaseClass(b) => out.push(Member {
                            name: resolve::BASE_MEMBER.to_string(),
                            offset: u64::from(b.offset),
                            ty: b.base_class.0,
                        }),
                        _ => {}
                    }
                }
                next = list.continuation.map(|t| t.0);
            }
            Ok(_) => return (Some(out), Some(format!("type {ti:#x} is not a field list"))),
            Err(crate_err) => {
                // See fieldlist.rs: pdb 0.8 misreads LF_INDEX continuations.
                let raw = ctx.raw.get_or_init(|| RawTpi::open(ctx.bytes));
                let Some(record) = raw.as_ref().and_then(|r| r.record(ti)) else {
                    return (
                        Some(out),
                        Some(format!("field list {ti:#x} cannot be read ({crate_err})")),
                    );
                };
                match fieldlist::parse(record) {
                    Ok((members, cont)) => {
                        out.extend(members);
                        next = cont;
                    }
                    Err((members, why)) => {
                        out.extend(members);
                        return (Some(out), Some(why));
                    }
                }
            }
        }
    }
    (Some(out), None)
}

fn primitive(p: &::pdb::PrimitiveType) -> Node {
    use ::pdb::{Indirection, PrimitiveKind as K};
    if let Some(ind) = p.indirection {
        let size = match ind {
            Indirection::Near16 => 2,
            Indirection::Far16 | Indirection::Huge16 | Indirection::Near32 => 4,
            Indirection::Far32 => 6,
            Indirection::Near64 => 8,
            Indirection::Near128 => 16,
        };
        return Node::Primitive {
            name: "pointer",
            size,
        };
    }
    let (name, size) = match p.kind {
        K::NoType => ("<no type>", 0),
        K::Void => ("void", 0),
        K::Char | K::RChar => ("char", 1),
        K::UChar => ("unsigned char", 1),
        K::I8 => ("__int8", 1),
        K::U8 => ("unsigned __int8", 1),
        K::Bool8 => ("bool", 1),
        K::WChar => ("wchar_t", 2),
        K::RChar16 => ("char16_t", 2),
        K::Short | K::I16 => ("short", 2),
        K::UShort | K::U16 => ("unsigned short", 2),
        K::F16 => ("half", 2),
        K::Bool16 => ("__bool16", 2),
        K::RChar32 => ("char32_t", 4),
        K::Long => ("long", 4),
        K::ULong => ("unsigned long", 4),
        K::I32 => ("int", 4),
        K::U32 => ("unsigned int", 4),
        K::F32 | K::F32PP => ("float", 4),
        K::Bool32 => ("__bool32", 4),
        K::HRESULT => ("HRESULT", 4),
        K::F48 => ("__float48", 6),
        K::Quad | K::I64 => ("__int64", 8),
        K::UQuad | K::U64 => ("unsigned __int64", 8),
        K::F64 => ("double", 8),
        K::Bool64 => ("__bool64", 8),
        K::Complex32 => ("_Complex float", 8),
        K::F80 => ("long double", 10),
        K::Octa | K::I128 => ("__int128", 16),
        K::UOcta | K::U128 => ("unsigned __int128", 16),
        K::F128 => ("__float128", 16),
        K::Complex64 => ("_Complex double", 16),
        K::Complex80 => ("_Complex long double", 20),
        K::Complex128 => ("_Complex __float128", 32),
        _ => ("<unknown primitive>", 0),
    };
    Node::Primitive { name, size }
}
