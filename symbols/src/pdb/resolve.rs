//! Dotted field paths over the owned type nodes.

use std::collections::HashMap;

use super::nodes::{Member, Node, UdtKind};
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

pub(crate) enum Walk {
    /// A record the walk needs is not loaded yet.
    Missing(u32),
    Failed(PdbError),
}

type Nodes = HashMap<u32, Node>;

fn get(nodes: &Nodes, ti: u32) -> Result<&Node, Walk> {
    nodes.get(&ti).ok_or(Walk::Missing(ti))
}

/// Follows modifiers and forward references to the record that defines the layout.
fn settle(nodes: &Nodes, names: &HashMap<String, u32>, mut ti: u32) -> Result<u32, Walk> {
    for _ in 0..MAX_DEPTH {
        match get(nodes, ti)? {
            Node::Modifier { target } => ti = *target,
            Node::Udt {
                forward: true,
                name,
                ..
            }
            | Node::Enum {
                forward: true,
                name,
                ..
            } => match names.get(name) {
                Some(def) if *def != ti => ti = *def,
                _ => return Ok(ti),
            },
            _ => return Ok(ti),
        }
    }
    Ok(ti)
}

pub(crate) fn size_of(nodes: &Nodes, names: &HashMap<String, u32>, ti: u32) -> Result<u64, Walk> {
    let ti = settle(nodes, names, ti)?;
    Ok(match get(nodes, ti)? {
        Node::Primitive { size, .. }
        | Node::Pointer { size, .. }
        | Node::Array { size, .. }
        | Node::Udt { size, .. } => *size,
        Node::Enum { underlying, .. } | Node::Bitfield { underlying, .. } => {
            size_of(nodes, names, *underlying)?
        }
        Node::Modifier { .. } | Node::Procedure | Node::Other { .. } => 0,
    })
}

fn describe(
    nodes: &Nodes,
    names: &HashMap<String, u32>,
    ti: u32,
    depth: usize,
) -> Result<TypeDesc, Walk> {
    let ti = settle(nodes, names, ti)?;
    Ok(match get(nodes, ti)? {
        Node::Primitive { name, size } => TypeDesc::Base {
            name: (*name).to_string(),
            size: *size,
        },
        Node::Udt {
            kind: UdtKind::Union,
            name,
            size,
            ..
        } => TypeDesc::Union {
            name: name.clone(),
            size: *size,
        },
        Node::Udt { name, size, .. } => TypeDesc::Struct {
            name: name.clone(),
            size: *size,
        },
        Node::Enum {
            name, underlying, ..
        } => TypeDesc::Enum {
            name: name.clone(),
            size: size_of(nodes, names, *underlying)?,
        },
        Node::Pointer { size, target } => {
            // Only the pointee's name is wanted; an unloaded pointee is not worth another load.
            let target = match nodes
                .get(target)
                .map(|_| describe(nodes, names, *target, depth + 1))
            {
                Some(Ok(d)) if depth < MAX_DEPTH => d.name(),
                _ => format!("type {target:#x}"),
            };
            TypeDesc::Pointer {
                size: *size,
                target,
            }
        }
        Node::Array { elem, size } => {
            let element = if depth < MAX_DEPTH {
                describe(nodes, names, *elem, depth + 1)?
            } else {
                TypeDesc::Other {
                    what: "nested too deep".into(),
                }
            };
            let esize = size_of(nodes, names, *elem)?;
            let count = if esize == 0 { 0 } else { size / esize };
            TypeDesc::Array {
                element: Box::new(element),
                count,
            }
        }
        Node::Bitfield { underlying, .. } => describe(nodes, names, *underlying, depth + 1)?,
        Node::Procedure => TypeDesc::Function,
        Node::Modifier { .. } => TypeDesc::Other {
            what: "modifier chain too long".into(),
        },
        Node::Other { what } => TypeDesc::Other { what: what.clone() },
    })
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

/// Finds `name` among the members of `udt`, looking inside anonymous members as C does. Returns
/// the offset relative to `udt` and the member's type.
fn find_member(
    nodes: &Nodes,
    names: &HashMap<String, u32>,
    udt: u32,
    name: &str,
    depth: usize,
) -> Result<Option<(u64, u32)>, Walk> {
    let Node::Udt { members, .. } = get(nodes, udt)? else {
        return Ok(None);
    };
    let members = members.as_ref().ok_or(Walk::Missing(udt))?;
    if let Some(m) = members.iter().find(|m| m.name == name) {
        return Ok(Some((m.offset, m.ty)));
    }
    if depth >= MAX_DEPTH {
        return Ok(None);
    }
    for m in members
        .iter()
        .filter(|m| is_anonymous(m) && m.name != BASE_MEMBER)
    {
        let inner = settle(nodes, names, m.ty)?;
        if let Some((off, ty)) = find_member(nodes, names, inner, name, depth + 1)? {
            return Ok(Some((m.offset + off, ty)));
        }
    }
    Ok(None)
}

/// Resolves `path` (empty for the type itself) inside the type at `root`.
pub(crate) fn walk(
    nodes: &Nodes,
    names: &HashMap<String, u32>,
    root: u32,
    ty: &str,
    path: &str,
) -> Result<FieldInfo, Walk> {
    let fail = |detail: String| {
        Walk::Failed(PdbError::NoField {
            ty: ty.to_string(),
            path: path.to_string(),
            detail,
        })
    };
    let mut cur = settle(nodes, names, root)?;
    if let Node::Udt {
        forward: true,
        name,
        ..
    } = get(nodes, cur)?
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
        if bitfield.is_some() {
            return Err(fail(format!(
                "{} is a bitfield and has no field {name}",
                comps[..i].join(".")
            )));
        }
        let here = if i == 0 {
            ty.to_string()
        } else {
            format!("{ty}.{}", comps[..i].join("."))
        };
        match get(nodes, cur)? {
            Node::Udt { forward: true, name: n, .. } => return Err(fail(format!("{here} has type {n}, whose layout the PDB does not define"))),
            Node::Udt { .. } => {}
            Node::Pointer { .. } => return Err(fail(format!("{here} is a pointer; a field path cannot go through a pointer (read the pointer, then ask about the type it points to)"))),
            _ => return Err(fail(format!("{here} is not a struct or union, so it has no field {name}"))),
        }
        let Some((off, mty)) = find_member(nodes, names, cur, name, 0)? else {
            let why = match get(nodes, cur)? {
                Node::Udt {
                    damaged: Some(d), ..
                } => format!(" (its member list may be incomplete: {d})"),
                _ => String::new(),
            };
            return Err(fail(format!("{here} has no field named {name}{why}")));
        };
        offset += off;
        cur = settle(nodes, names, mty)?;
        if let Node::Bitfield {
            underlying,
            position,
            length,
        } = get(nodes, cur)?
        {
            bitfield = Some(Bitfield {
                position: *position,
                length: *length,
            });
            cur = settle(nodes, names, *underlying)?;
        }
        for n in indexes {
            let Node::Array { elem, size } = get(nodes, cur)? else {
                return Err(fail(format!(
                    "{name} is not an array, so it cannot be indexed"
                )));
            };
            let (elem, size) = (*elem, *size);
            let esize = size_of(nodes, names, elem)?;
            let count = if esize == 0 { 0 } else { size / esize };
            if n >= count {
                return Err(fail(format!(
                    "index {n} is past the end of {name} ({count} elements)"
                )));
            }
            offset += n * esize;
            cur = settle(nodes, names, elem)?;
        }
    }
    let size = size_of(nodes, names, cur)?;
    let desc = describe(nodes, names, cur, 0)?;
    Ok(FieldInfo {
        offset,
        size,
        bitfield,
        ty: desc,
    })
}
