//! Decoded type records, owned, as the layout walk sees them.

/// A struct/union member (or base class) as the walk needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// One type record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Primitive {
        name: &'static str,
        size: u64,
    },
    /// `fields` is the first field list record; `None` for forward references.
    /// `unique` is the decorated name (`.?AU_EPROCESS@@`) C++ compilers add; MSVC names every
    /// anonymous type `<unnamed-tag>`, so forward references resolve by it when present.
    Udt {
        kind: UdtKind,
        name: String,
        unique: Option<String>,
        size: u64,
        forward: bool,
        fields: Option<u32>,
    },
    Enum {
        name: String,
        unique: Option<String>,
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
