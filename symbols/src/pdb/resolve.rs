//! Dotted field paths over the decoded type records.

use super::names::NameIndex;
use super::nodes::{Member, Node, UdtKind};
use super::tpi::Tpi;
use super::PdbError;

/// Name given to a base-class entry among a struct's members (C++ only; kernel C types have none).
pub(crate) const BASE_MEMBER: &str = "<base class>";
/// How deep anonymous members, modifier chains and array nesting are followed.
const MAX_DEPTH: usize = 16;

/// Bit position and width of a bitfield inside its storage unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bitfield {
    /// Lowest bit of the field within the unit at [`FieldInfo::offset`].
    pub position: u8,
    /// Width in bits.
    pub length: u8,
}

/// What a field (or a whole type, for [`Pdb::type_size`](super::Pdb::type_size)) looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TypeDesc {
    /// A base type (`unsigned long`, `unsigned __int64`, `wchar_t`).
    Base { name: String, size: u64 },
    /// A struct or class.
    Struct { name: String, size: u64 },
    /// A union.
    Union { name: String, size: u64 },
    /// An enum.
    Enum { name: String, size: u64 },
    /// A pointer; `target` is the pointee's name (`_LIST_ENTRY`, `void`).
    Pointer { size: u64, target: String },
    /// A fixed array: element type and element count (`ImageFileName` → `unsigned char`, 15).
    Array { element: Box<TypeDesc>, count: u64 },
    /// A function type (only reachable through pointers).
    Function,
    /// A record this reader does not interpret.
    Other { what: String },
}

impl TypeDesc {
    /// Name as `dt` would print it.
    pub fn name(&self) -> String {
        match self {
            TypeDesc::Base { name, .. }
            | TypeDesc::Struct { name, .. }
            | TypeDesc::Union { name, .. }
            | TypeDesc::Enum { name, .. } => name.clone(),
            TypeDesc::Pointer { target, .. } => format!("{target}*"),
            TypeDesc::Array { element, count } => format!("{}[{count}]", element.name()),
            TypeDesc::Function => "function".into(),
            TypeDesc::Other { what } => what.clone(),
        }
    }
}

/// Location and shape of a field inside its outermost type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldInfo {
    /// Byte offset from the start of the outermost type (for a bitfield: of its storage unit).
    pub offset: u64,
    /// Size in bytes (for a bitfield: of its storage unit).
    pub size: u64,
    /// Bit position and width when the field is a bitfield.
    pub bitfield: Option<Bitfield>,
    /// The field's type.
    pub ty: TypeDesc,
}

/// Where to look up types: the indexed stream, and typedef names from `S_UDT` symbols.
pub(crate) struct Types<'a> {
    pub tpi: &'a Tpi,
    pub typedefs: Option<&'a NameIndex>,
}

impl Types<'_> {
    /// A struct/union/enum by tag name, or else by a typedef naming it (`EPROCESS` → `_EPROCESS`).
    pub fn lookup(&self, ty: &str) -> Option<u32> {
        self.tpi.by_name(ty).or_else(|| self.typedefs?.get(ty))
    }
}

/// Follows modifiers and forward references to the record that defines the layout.
fn settle(t: &Types<'_>, mut ti: u32) -> (u32, Node) {
    let mut node = t.tpi.node(ti);
    for _ in 0..MAX_DEPTH {
        let next = match &node {
            Node::Modifier { target } => *target,
            Node::Udt {
                forward: true,
                name,
                unique,
                ..
            }
            | Node::Enum {
                forward: true,
                name,
                unique,
                ..
            } => match t.tpi.definition(name, unique.as_deref()) {
                Some(def) if def != ti => def,
                _ => break,
            },
            _ => break,
        };
        ti = next;
        node = t.tpi.node(ti);
    }
    (ti, node)
}

fn size_of(t: &Types<'_>, ti: u32, depth: usize) -> u64 {
    match settle(t, ti).1 {
        Node::Primitive { size, .. }
        | Node::Pointer { size, .. }
        | Node::Array { size, .. }
        | Node::Udt { size, .. } => size,
        Node::Enum { underlying, .. } | Node::Bitfield { underlying, .. } if depth < MAX_DEPTH => {
            size_of(t, underlying, depth + 1)
        }
        _ => 0,
    }
}

fn describe(t: &Types<'_>, ti: u32, depth: usize) -> TypeDesc {
    if depth >= MAX_DEPTH {
        return TypeDesc::Other {
            what: "nested too deep".into(),
        };
    }
    match settle(t, ti).1 {
        Node::Primitive { name, size } => TypeDesc::Base {
            name: name.to_string(),
            size,
        },
        Node::Udt {
            kind: UdtKind::Union,
            name,
            size,
            ..
        } => TypeDesc::Union { name, size },
        Node::Udt { name, size, .. } => TypeDesc::Struct { name, size },
        Node::Enum {
            name, underlying, ..
        } => TypeDesc::Enum {
            name,
            size: size_of(t, underlying, depth + 1),
        },
        Node::Pointer { size, target } => TypeDesc::Pointer {
            size,
            target: describe(t, target, depth + 1).name(),
        },
        Node::Array { elem, size } => {
            let esize = size_of(t, elem, depth + 1);
            let count = size.checked_div(esize).unwrap_or(0);
            TypeDesc::Array {
                element: Box::new(describe(t, elem, depth + 1)),
                count,
            }
        }
        Node::Bitfield { underlying, .. } => describe(t, underlying, depth + 1),
        Node::Procedure => TypeDesc::Function,
        Node::Modifier { .. } => TypeDesc::Other {
            what: "modifier chain too long".into(),
        },
        Node::Other { what } => TypeDesc::Other { what },
    }
}

/// One path component: a member name and any `[n]` indexes after it.
fn split_component(c: &str) -> Option<(&str, Vec<u64>)> {
    let (name, mut rest) = match c.find('[') {
        Some(i) => (&c[..i], &c[i..]),
        None => (c, ""),
    };
    let mut idx = Vec::new();
    while let Some(r) = rest.strip_prefix('[') {
        let end = r.find(']')?;
        let t = r[..end].trim();
        let n = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(h) => u64::from_str_radix(h, 16).ok()?,
            None => t.parse().ok()?,
        };
        idx.push(n);
        rest = &r[end + 1..];
    }
    (!name.trim().is_empty() && rest.trim().is_empty()).then(|| (name.trim(), idx))
}

fn is_anonymous(m: &Member) -> bool {
    m.name.is_empty() || m.name.starts_with('<') || m.name.starts_with("__unnamed")
}

/// Finds `name` among the members of the struct/union `fields` lists, looking inside anonymous
/// members as C does. Returns the offset relative to the struct and the member's type, or why the
/// member list may be incomplete when it is not there.
fn find_member(
    t: &Types<'_>,
    fields: u32,
    name: &str,
    depth: usize,
) -> Result<(u64, u32), Option<String>> {
    let (members, damaged) = t.tpi.members(fields);
    if let Some(m) = members.iter().find(|m| m.name == name) {
        return Ok((m.offset, m.ty));
    }
    if depth < MAX_DEPTH {
        for m in members
            .iter()
            .filter(|m| is_anonymous(m) && m.name != BASE_MEMBER)
        {
            if let (
                _,
                Node::Udt {
                    fields: Some(inner),
                    ..
                },
            ) = settle(t, m.ty)
            {
                if let Ok((off, ty)) = find_member(t, inner, name, depth + 1) {
                    return Ok((m.offset + off, ty));
                }
            }
        }
    }
    Err(damaged)
}

/// Resolves `path` (empty for the type itself) inside the type at `root`.
pub(crate) fn walk(t: &Types<'_>, root: u32, ty: &str, path: &str) -> Result<FieldInfo, PdbError> {
    let fail = |detail: String| PdbError::NoField {
        ty: ty.to_string(),
        path: path.to_string(),
        detail,
    };
    let (mut cur, mut node) = settle(t, root);
    if let Node::Udt {
        forward: true,
        name,
        ..
    } = &node
    {
        return Err(fail(format!(
            "only a forward declaration of {name} is in the PDB, not its layout"
        )));
    }
    let mut offset = 0u64;
    let mut bitfield = None;
    let comps: Vec<&str> = if path.is_empty() {
        Vec::new()
    } else {
        path.split('.').collect()
    };
    for (i, comp) in comps.iter().enumerate() {
        let (name, indexes) = split_component(comp).ok_or_else(|| {
            fail(format!(
                "{comp:?} is not a field name (optionally followed by [index])"
            ))
        })?;
        let here = if i == 0 {
            ty.to_string()
        } else {
            format!("{ty}.{}", comps[..i].join("."))
        };
        if bitfield.is_some() {
            return Err(fail(format!(
                "{here} is a bitfield and has no field {name}"
            )));
        }
        let fields = match &node {
            Node::Udt { forward: true, name: n, .. } => return Err(fail(format!("{here} has type {n}, whose layout the PDB does not define"))),
            Node::Udt { fields: Some(f), .. } => *f,
            Node::Udt { fields: None, .. } => return Err(fail(format!("{here} has no members"))),
            Node::Pointer { .. } => return Err(fail(format!("{here} is a pointer; a field path cannot go through a pointer (read the pointer, then ask about the type it points to)"))),
            _ => return Err(fail(format!("{here} is not a struct or union, so it has no field {name}"))),
        };
        let (off, mty) = find_member(t, fields, name, 0).map_err(|damaged| {
            let why = damaged
                .map(|d| format!(" (its member list may be incomplete: {d})"))
                .unwrap_or_default();
            fail(format!("{here} has no field named {name}{why}"))
        })?;
        offset += off;
        (cur, node) = settle(t, mty);
        if let Node::Bitfield {
            underlying,
            position,
            length,
        } = node
        {
            bitfield = Some(Bitfield { position, length });
            (cur, node) = settle(t, underlying);
        }
        for n in indexes {
            let Node::Array { elem, size } = node else {
                return Err(fail(format!(
                    "{name} is not an array, so it cannot be indexed"
                )));
            };
            let esize = size_of(t, elem, 0);
            let count = size.checked_div(esize).unwrap_or(0);
            if n >= count {
                return Err(fail(format!(
                    "index {n} is past the end of {name} ({count} elements)"
                )));
            }
            offset += n * esize;
            (cur, node) = settle(t, elem);
        }
    }
    Ok(FieldInfo {
        offset,
        size: size_of(t, cur, 0),
        bitfield,
        ty: describe(t, cur, 0),
    })
}
