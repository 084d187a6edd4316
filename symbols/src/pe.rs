//! Identity of a PE module: what is needed to pick its PDB and its per-build layouts.
//!
//! Kernel images in a crash dump are mapped images with holes: a driver's headers and `.rdata`
//! are usually present, while pageable sections (`.rsrc`, `PAGE*`) are often absent. Everything is
//! therefore read through [`ImageReader`] by RVA, piece by piece, and each optional piece (the
//! CodeView record, the file version) fails on its own with a reason while the rest survives.

use std::fmt;
use std::path::Path;

use crate::resource;

/// Bytes of a PE image addressed by RVA. Reads return how many bytes were read and stop at the
/// first unreadable byte, the way `IDebugDataSpaces::ReadVirtual` and the dump reader do.
pub trait ImageReader {
    /// Reads up to `buf.len()` bytes at `rva` and returns how many were read.
    fn read(&self, rva: u32, buf: &mut [u8]) -> usize;
}

impl<F: Fn(u32, &mut [u8]) -> usize> ImageReader for F {
    fn read(&self, rva: u32, buf: &mut [u8]) -> usize {
        self(rva, buf)
    }
}

/// A fully present mapped image (RVA = offset into the slice).
impl ImageReader for [u8] {
    fn read(&self, rva: u32, buf: &mut [u8]) -> usize {
        let start = rva as usize;
        if start >= self.len() {
            return 0;
        }
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        n
    }
}

/// The name and index of the PDB a module was linked with, from its CodeView `RSDS` record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PdbId {
    /// Bare file name (`tcpip.pdb`); any directory the linker embedded is stripped.
    pub name: String,
    /// The GUID exactly as stored in the RSDS record and the PDB info stream (Data1..Data3 little
    /// endian, Data4 as bytes).
    pub guid: [u8; 16],
    /// The age from the RSDS record (equal to the PDB's DBI age).
    pub age: u32,
}

impl PdbId {
    /// GUID as a symbol store spells it: 32 upper-case hex digits, no dashes, fields in their
    /// natural (big-endian) reading order.
    pub fn guid_hex(&self) -> String {
        let g = &self.guid;
        let d1 = u32::from_le_bytes([g[0], g[1], g[2], g[3]]);
        let d2 = u16::from_le_bytes([g[4], g[5]]);
        let d3 = u16::from_le_bytes([g[6], g[7]]);
        let mut s = format!("{d1:08X}{d2:04X}{d3:04X}");
        for b in &g[8..] {
            s.push_str(&format!("{b:02X}"));
        }
        s
    }

    /// The store directory name of this PDB: [`guid_hex`](Self::guid_hex) followed by the age in
    /// upper-case hex without leading zeros (`3844DBB920174967BE7AA4A2C20430FA2`).
    pub fn store_key(&self) -> String {
        format!("{}{:X}", self.guid_hex(), self.age)
    }

    /// The GUID in registry form, `{3844DBB9-2017-4967-BE7A-A4A2C20430FA}`.
    pub fn guid_braced(&self) -> String {
        let h = self.guid_hex();
        format!(
            "{{{}-{}-{}-{}-{}}}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

impl fmt::Display for PdbId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (GUID {}, age {})",
            self.name,
            self.guid_braced(),
            self.age
        )
    }
}

/// Why a piece of a module's identity could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The bytes are not in memory (paged out, or not captured by the dump).
    #[error("the {what} at RVA {rva:#x} is not readable: only {got} of {len} bytes are present (paged out or not in the dump)")]
    Unreadable {
        what: &'static str,
        rva: u32,
        len: usize,
        got: usize,
    },
    /// The bytes are there but do not hold what the PE format says they should.
    #[error("the {what} is malformed: {detail}")]
    Malformed { what: &'static str, detail: String },
    /// The image simply does not have this piece.
    #[error("the image has no {what}")]
    Absent { what: &'static str },
    /// A file on disk could not be read.
    #[error("cannot read {path}: {reason}")]
    Io { path: String, reason: String },
}

/// What identifies a loaded module build: enough to find its PDB and pick per-build layouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleIdentity {
    /// `IMAGE_FILE_HEADER.Machine` (0x8664 for x64).
    pub machine: u16,
    /// `IMAGE_FILE_HEADER.TimeDateStamp` (with /Brepro a hash, not a time).
    pub timestamp: u32,
    /// `IMAGE_OPTIONAL_HEADER.SizeOfImage`.
    pub size_of_image: u32,
    /// `IMAGE_OPTIONAL_HEADER.CheckSum`.
    pub checksum: u32,
    /// The PDB named by the CodeView RSDS record, or why it could not be read.
    pub pdb: Result<PdbId, IdentityError>,
    /// `VS_FIXEDFILEINFO` file version (major, minor, build, revision), or why it could not be read.
    pub file_version: Result<[u16; 4], IdentityError>,
}

/// `IMAGE_FILE_MACHINE_AMD64`.
pub const MACHINE_AMD64: u16 = 0x8664;
const DIR_RESOURCE: usize = 2;
const DIR_DEBUG: usize = 6;
/// `IMAGE_DEBUG_TYPE_CODEVIEW`.
const DEBUG_TYPE_CODEVIEW: u32 = 2;
/// A debug directory with more entries than this is treated as corrupt (real images have < 10).
const MAX_DEBUG_ENTRIES: usize = 64;
/// Longest PDB path an RSDS record may carry that we accept (MAX_PATH-ish, with room).
const MAX_PDB_PATH: usize = 1024;

/// The header facts the optional pieces are found through.
#[derive(Debug, Clone)]
pub(crate) struct Headers {
    pub machine: u16,
    pub timestamp: u32,
    pub size_of_image: u32,
    pub checksum: u32,
    pub size_of_headers: u32,
    pub dirs: Vec<(u32, u32)>,
    pub sections: Vec<Section>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Section {
    pub rva: u32,
    pub raw_offset: u32,
    pub raw_size: u32,
}

impl ModuleIdentity {
    /// Reads the identity of an image mapped in memory. `image_size` is what the loader recorded
    /// (`KLDR_DATA_TABLE_ENTRY.SizeOfImage`); it bounds every read. 0 means unknown: the headers'
    /// own `SizeOfImage` bounds the reads after them. Fails only when the headers themselves are
    /// unreadable or not PE; the RSDS record and the file version each fail on their own inside
    /// the result.
    pub fn from_reader<R: ImageReader + ?Sized>(
        reader: &R,
        image_size: u32,
    ) -> Result<ModuleIdentity, IdentityError> {
        let mut img = Bounded {
            reader,
            size: if image_size == 0 {
                u32::MAX
            } else {
                image_size
            },
        };
        let h = parse_headers(&img)?;
        if image_size == 0 {
            img.size = h.size_of_image;
        }
        let pdb = read_codeview(&img, &h);
        let file_version = match h.dirs.get(DIR_RESOURCE).copied() {
            Some((rva, size)) if rva != 0 && size != 0 => resource::file_version(&img, rva, size),
            _ => Err(IdentityError::Absent {
                what: "resource directory",
            }),
        };
        Ok(ModuleIdentity {
            machine: h.machine,
            timestamp: h.timestamp,
            size_of_image: h.size_of_image,
            checksum: h.checksum,
            pdb,
            file_version,
        })
    }

    /// Reads the identity of a PE file on disk (RVAs are mapped to file offsets through the
    /// section table).
    pub fn from_file(path: &Path) -> Result<ModuleIdentity, IdentityError> {
        let image = FileImage::open(path)?;
        Self::from_reader(&image, image.image_size())
    }

    /// The PDB identity if the RSDS record was readable.
    pub fn pdb_id(&self) -> Option<&PdbId> {
        self.pdb.as_ref().ok()
    }

    /// The file version if the version resource was readable.
    pub fn version(&self) -> Option<[u16; 4]> {
        self.file_version.as_ref().ok().copied()
    }
}

/// A PE file on disk presented by RVA, the way the loader would have mapped it.
#[derive(Debug, Clone)]
pub struct FileImage {
    bytes: Vec<u8>,
    sections: Vec<Section>,
    size_of_headers: u32,
    image_size: u32,
}

/// PE files larger than this are not kernel modules; refusing them avoids reading a huge file.
const MAX_FILE: u64 = 512 << 20;

impl FileImage {
    /// Reads a PE file and its section table.
    pub fn open(path: &Path) -> Result<FileImage, IdentityError> {
        let io = |e: std::io::Error| IdentityError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_FILE {
            return Err(IdentityError::Malformed {
                what: "PE file",
                detail: format!(
                    "{} is {len} bytes, more than any kernel module",
                    path.display()
                ),
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        Self::from_bytes(bytes)
    }

    /// Wraps the bytes of a PE file.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<FileImage, IdentityError> {
        // Headers occupy the same offsets in the file and in the mapped image.
        let flat = Bounded {
            reader: &bytes[..],
            size: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
        };
        let h = parse_headers(&flat)?;
        Ok(FileImage {
            sections: h.sections,
            size_of_headers: h.size_of_headers,
            image_size: h.size_of_image,
            bytes,
        })
    }

    /// `SizeOfImage` from the optional header.
    pub fn image_size(&self) -> u32 {
        self.image_size
    }

    fn file_offset(&self, rva: u32) -> Option<(usize, usize)> {
        if rva < self.size_of_headers {
            return Some((rva as usize, (self.size_of_headers - rva) as usize));
        }
        self.sections.iter().find_map(|s| {
            let delta = rva.checked_sub(s.rva)?;
            // Bytes past SizeOfRawData are zero-fill in memory and absent from the file.
            (delta < s.raw_size).then(|| {
                (
                    (s.raw_offset as usize + delta as usize),
                    (s.raw_size - delta) as usize,
                )
            })
        })
    }
}

impl ImageReader for FileImage {
    fn read(&self, rva: u32, buf: &mut [u8]) -> usize {
        let mut done = 0;
        while done < buf.len() {
            let Some(cur) = rva.checked_add(done as u32) else {
                break;
            };
            let Some((off, avail)) = self.file_offset(cur) else {
                break;
            };
            let n = (buf.len() - done)
                .min(avail)
                .min(self.bytes.len().saturating_sub(off));
            if n == 0 {
                break;
            }
            buf[done..done + n].copy_from_slice(&self.bytes[off..off + n]);
            done += n;
        }
        done
    }
}

/// An [`ImageReader`] clipped to the image size, with "read exactly or say why" helpers.
pub(crate) struct Bounded<'a, R: ?Sized> {
    pub reader: &'a R,
    pub size: u32,
}

impl<R: ImageReader + ?Sized> Bounded<'_, R> {
    pub fn exact(
        &self,
        what: &'static str,
        rva: u32,
        len: usize,
    ) -> Result<Vec<u8>, IdentityError> {
        let end = u64::from(rva) + len as u64;
        if end > u64::from(self.size) {
            return Err(IdentityError::Malformed {
                what,
                detail: format!(
                    "RVA {rva:#x}+{len:#x} lies outside the {:#x}-byte image",
                    self.size
                ),
            });
        }
        let mut buf = vec![0u8; len];
        let got = self.reader.read(rva, &mut buf).min(len);
        if got < len {
            return Err(IdentityError::Unreadable {
                what,
                rva,
                len,
                got,
            });
        }
        Ok(buf)
    }
}

pub(crate) fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

pub(crate) fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

pub(crate) fn parse_headers<R: ImageReader + ?Sized>(
    img: &Bounded<'_, R>,
) -> Result<Headers, IdentityError> {
    let dos = img.exact("DOS header", 0, 64)?;
    if &dos[0..2] != b"MZ" {
        return Err(IdentityError::Malformed {
            what: "DOS header",
            detail: "no MZ signature".into(),
        });
    }
    let lfanew = u32_at(&dos, 0x3c);
    // Real images keep the NT headers within the first page; a larger e_lfanew is corruption.
    if !(64..0x1000).contains(&lfanew) {
        return Err(IdentityError::Malformed {
            what: "DOS header",
            detail: format!("e_lfanew {lfanew:#x} is outside the first page"),
        });
    }
    let nt = img.exact("NT headers", lfanew, 24)?;
    if &nt[0..4] != b"PE\0\0" {
        return Err(IdentityError::Malformed {
            what: "NT headers",
            detail: format!("no PE signature at {lfanew:#x}"),
        });
    }
    let machine = u16_at(&nt, 4);
    let nsections = usize::from(u16_at(&nt, 6));
    let timestamp = u32_at(&nt, 8);
    let opt_size = usize::from(u16_at(&nt, 20));
    let opt_rva = lfanew + 24;
    let opt = img.exact("optional header", opt_rva, opt_size)?;
    if opt.len() < 2 {
        return Err(IdentityError::Malformed {
            what: "optional header",
            detail: "it is empty".into(),
        });
    }
    // PE32 (0x10b) and PE32+ (0x20b) differ in where the data directories start.
    let (dirs_at, count_at) = match u16_at(&opt, 0) {
        0x20b => (112, 108),
        0x10b => (96, 92),
        m => {
            return Err(IdentityError::Malformed {
                what: "optional header",
                detail: format!("unknown magic {m:#x}"),
            })
        }
    };
    if opt.len() < dirs_at {
        return Err(IdentityError::Malformed {
            what: "optional header",
            detail: format!("only {} bytes long", opt.len()),
        });
    }
    let size_of_image = u32_at(&opt, 56);
    let size_of_headers = u32_at(&opt, 60);
    let checksum = u32_at(&opt, 64);
    let ndirs = (u32_at(&opt, count_at) as usize)
        .min(16)
        .min((opt.len() - dirs_at) / 8);
    let dirs = (0..ndirs)
        .map(|i| {
            (
                u32_at(&opt, dirs_at + 8 * i),
                u32_at(&opt, dirs_at + 8 * i + 4),
            )
        })
        .collect();
    let sec_rva = opt_rva + opt_size as u32;
    let raw = img.exact("section table", sec_rva, nsections.min(96) * 40)?;
    let sections = raw
        .chunks_exact(40)
        .map(|s| Section {
            rva: u32_at(s, 12),
            raw_size: u32_at(s, 16),
            raw_offset: u32_at(s, 20),
        })
        .collect();
    Ok(Headers {
        machine,
        timestamp,
        size_of_image,
        checksum,
        size_of_headers,
        dirs,
        sections,
    })
}

fn read_codeview<R: ImageReader + ?Sized>(
    img: &Bounded<'_, R>,
    h: &Headers,
) -> Result<PdbId, IdentityError> {
    let (rva, size) = match h.dirs.get(DIR_DEBUG).copied() {
        Some((rva, size)) if rva != 0 && size != 0 => (rva, size),
        _ => {
            return Err(IdentityError::Absent {
                what: "debug directory",
            })
        }
    };
    let count = (size as usize / 28).min(MAX_DEBUG_ENTRIES);
    let dir = img.exact("debug directory", rva, count * 28)?;
    let mut unreadable = None;
    for e in dir.chunks_exact(28) {
        if u32_at(e, 12) != DEBUG_TYPE_CODEVIEW {
            continue;
        }
        let (data_size, data_rva) = (u32_at(e, 16) as usize, u32_at(e, 20));
        if data_rva == 0 {
            // Only a file pointer: the record is not mapped into memory.
            unreadable.get_or_insert(IdentityError::Absent {
                what: "mapped CodeView record",
            });
            continue;
        }
        if data_size < 24 {
            return Err(IdentityError::Malformed {
                what: "CodeView record",
                detail: format!("{data_size} bytes is too short for RSDS"),
            });
        }
        match parse_rsds(img, data_rva, data_size.min(24 + MAX_PDB_PATH)) {
            Ok(id) => return Ok(id),
            Err(e) => {
                unreadable.get_or_insert(e);
            }
        }
    }
    Err(unreadable.unwrap_or(IdentityError::Absent {
        what: "CodeView (RSDS) debug record",
    }))
}

fn parse_rsds<R: ImageReader + ?Sized>(
    img: &Bounded<'_, R>,
    rva: u32,
    size: usize,
) -> Result<PdbId, IdentityError> {
    // SizeOfData may be padded past the name; when the page after the record is missing, the
    // bytes up to the name's NUL are enough.
    let rec = img.exact("CodeView record", rva, 24)?;
    let room = img.size.saturating_sub(rva + 24) as usize;
    let mut tail = vec![0u8; (size - 24).min(room)];
    let got = img.reader.read(rva + 24, &mut tail).min(tail.len());
    if &rec[0..4] != b"RSDS" {
        let sig = String::from_utf8_lossy(&rec[0..4]).into_owned();
        return Err(IdentityError::Malformed {
            what: "CodeView record",
            detail: format!("signature {sig:?} is not RSDS (PDB 7.0)"),
        });
    }
    let mut guid = [0u8; 16];
    guid.copy_from_slice(&rec[4..20]);
    let age = u32_at(&rec, 20);
    let path_bytes = &tail[..got];
    let end = match path_bytes.iter().position(|&b| b == 0) {
        Some(end) => end,
        None if got < tail.len() => {
            return Err(IdentityError::Unreadable {
                what: "PDB name in the CodeView record",
                rva: rva + 24,
                len: tail.len(),
                got,
            })
        }
        None => {
            return Err(IdentityError::Malformed {
                what: "CodeView record",
                detail: "the PDB name is not NUL-terminated".into(),
            })
        }
    };
    let full = String::from_utf8_lossy(&path_bytes[..end]).into_owned();
    // Linkers without /pdbaltpath embed the build machine's full path; stores key on the bare name.
    let name = full.rsplit(['\\', '/']).next().unwrap_or("").to_string();
    if name.is_empty() {
        return Err(IdentityError::Malformed {
            what: "CodeView record",
            detail: format!("PDB path {full:?} has no file name"),
        });
    }
    Ok(PdbId { name, guid, age })
}

#[cfg(test)]
#[path = "pe_tests.rs"]
mod tests;
