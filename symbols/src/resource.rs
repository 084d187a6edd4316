//! The file version from a module's `VS_VERSION_INFO` resource.
//!
//! Path: resource directory → type `RT_VERSION` (16) → first name → first language → data entry →
//! `VS_VERSIONINFO` block → `VS_FIXEDFILEINFO`. Kernel modules keep `.rsrc` pageable, so in a dump
//! any of these hops may land on an absent page; that only costs the version, never the identity.

use crate::pe::{u16_at, u32_at, Bounded, IdentityError, ImageReader};

/// `RT_VERSION` resource type id.
const RT_VERSION: u32 = 16;
/// `VS_FIXEDFILEINFO.dwSignature`.
const FIXED_SIGNATURE: u32 = 0xFEEF_04BD;
/// Directory entries looked at per level; real version resources have one or two.
const MAX_ENTRIES: usize = 512;

/// Reads `dwFileVersionMS/LS` as (major, minor, build, revision).
pub(crate) fn file_version<R: ImageReader + ?Sized>(
    img: &Bounded<'_, R>,
    dir_rva: u32,
    dir_size: u32,
) -> Result<[u16; 4], IdentityError> {
    // Level 1 picks the type, levels 2 and 3 take the first name and language.
    let mut off = 0u32;
    for level in 0..3 {
        let entry = find_entry(
            img,
            dir_rva,
            dir_size,
            off,
            (level == 0).then_some(RT_VERSION),
        )?;
        let target = u32_at(&entry, 4);
        let is_dir = target & 0x8000_0000 != 0;
        off = target & 0x7fff_ffff;
        if level < 2 && !is_dir {
            return Err(malformed(format!(
                "level {} entry points at data, not a directory",
                level + 1
            )));
        }
        if level == 2 && is_dir {
            return Err(malformed(
                "language entry points at a directory, not data".into(),
            ));
        }
    }
    if off >= dir_size {
        return Err(malformed(format!(
            "data entry offset {off:#x} is past the directory size {dir_size:#x}"
        )));
    }
    let data = img.exact("version resource data entry", dir_rva + off, 16)?;
    // OffsetToData of a data entry is an RVA, not an offset in the resource directory.
    let (rva, size) = (u32_at(&data, 0), u32_at(&data, 4) as usize);
    if size < 40 + 52 {
        return Err(malformed(format!(
            "VS_VERSIONINFO of {size} bytes cannot hold VS_FIXEDFILEINFO"
        )));
    }
    let block = img.exact("VS_VERSIONINFO", rva, (40 + 52).min(size))?;
    parse_fixed(&block)
}

fn malformed(detail: String) -> IdentityError {
    IdentityError::Malformed {
        what: "version resource",
        detail,
    }
}

/// Finds the entry with `id` (or the first entry when `id` is `None`) in the directory at `off`.
fn find_entry<R: ImageReader + ?Sized>(
    img: &Bounded<'_, R>,
    base: u32,
    dir_size: u32,
    off: u32,
    id: Option<u32>,
) -> Result<Vec<u8>, IdentityError> {
    if u64::from(off) + 16 > u64::from(dir_size) {
        return Err(malformed(format!(
            "directory at offset {off:#x} is past the directory size {dir_size:#x}"
        )));
    }
    let head = img.exact("resource directory", base + off, 16)?;
    let named = usize::from(u16_at(&head, 12));
    let ids = usize::from(u16_at(&head, 14));
    let total = (named + ids).min(MAX_ENTRIES);
    if total == 0 {
        return Err(IdentityError::Absent {
            what: "version resource",
        });
    }
    let entries = img.exact("resource directory entries", base + off + 16, total * 8)?;
    let found = entries.chunks_exact(8).find(|e| match id {
        // Named entries come first and have the high bit set; ids are compared as plain numbers.
        Some(id) => u32_at(e, 0) == id,
        None => true,
    });
    found.map(<[u8]>::to_vec).ok_or(IdentityError::Absent {
        what: "version resource (RT_VERSION)",
    })
}

/// `VS_VERSIONINFO`: wLength, wValueLength, wType, the UTF-16 key "VS_VERSION_INFO\0", padding to
/// a 32-bit boundary (offset 40), then the 52-byte `VS_FIXEDFILEINFO`.
fn parse_fixed(block: &[u8]) -> Result<[u16; 4], IdentityError> {
    let key: Vec<u16> = block[6..38]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let expected: Vec<u16> = "VS_VERSION_INFO\0".encode_utf16().collect();
    if key != expected {
        return Err(malformed(format!(
            "key is {:?}, not VS_VERSION_INFO",
            String::from_utf16_lossy(&key)
        )));
    }
    let value_len = usize::from(u16_at(block, 2));
    if value_len < 52 {
        return Err(malformed(format!(
            "wValueLength {value_len} is too small for VS_FIXEDFILEINFO"
        )));
    }
    let fixed = &block[40..92];
    if u32_at(fixed, 0) != FIXED_SIGNATURE {
        return Err(malformed(format!(
            "VS_FIXEDFILEINFO signature {:#x} is not 0xfeef04bd",
            u32_at(fixed, 0)
        )));
    }
    let (ms, ls) = (u32_at(fixed, 8), u32_at(fixed, 12));
    Ok([(ms >> 16) as u16, ms as u16, (ls >> 16) as u16, ls as u16])
}
