//! Parses and validates the page layout behind the header (facts 1.2, 1.4, 1.5, 2.3, 2.4) and
//! builds the page index. Nothing here allocates more than the file's own size justifies.

use crate::error::{Error, Result};
use crate::gxa::{Pfn, PAGE_SIZE};
use crate::header::{off, u32_at, u64_at, DumpType, Header, HEADER_SIZE};
use crate::index::{Bitmap, Index, Run};

/// Highest frame number x64 can address (52-bit physical addresses).
const MAX_PFN: u64 = 1 << 40;
/// Runs in a type-1 header: 42 fit the 700-byte buffer, QEMU's elf2dmp writes up to 43 using
/// the padding at 0x344 (facts 1.2).
const MAX_RUNS_STRICT: u64 = 42;
const MAX_RUNS_QEMU: u64 = 43;
/// The "PAGE" fill read as a u32 (facts 1.1).
const PAGE_FILL_U32: u32 = 0x4547_4150;

/// How the pages are laid out in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Layout {
    /// File offset of the first stored page.
    pub first_page_offset: u64,
    /// File offset just past the last stored page, as declared by the headers.
    pub pages_end: u64,
    /// Present pages the headers declare.
    pub declared_pages: u64,
    /// Runs (type 1) or ranges (types 8/9/10); for bitmaps the number of maximal runs of set bits
    /// is not computed and this is 0.
    pub runs: usize,
    /// Bits in the bitmap (types 5/6).
    pub bitmap_bits: Option<u64>,
    /// Summary-header signature for types 5/6 (`"SDMP"` or `"FDMP"`).
    pub summary_signature: Option<String>,
}

fn corrupt(msg: String) -> Error {
    Error::Corrupt(msg)
}

fn need(file: &[u8], end: u64, what: &'static str) -> Result<()> {
    if (file.len() as u64) < end {
        return Err(Error::Truncated {
            what,
            need: end,
            len: file.len() as u64,
        });
    }
    Ok(())
}

/// Sorts raw `(first, count)` lists (slots in file order) and rejects overflow and overlap.
fn runs_index(raw: &[(u64, u64)], what: &str) -> Result<Vec<Run>> {
    let mut runs = Vec::with_capacity(raw.len());
    let mut slot = 0u64;
    for (i, &(first, count)) in raw.iter().enumerate() {
        let end = first.checked_add(count).filter(|&e| e <= MAX_PFN);
        if end.is_none() {
            return Err(corrupt(format!("{what} {i} (PFN {first:#x}, {count:#x} pages) runs past the 52-bit physical address space")));
        }
        // An empty run holds no page; kept, it could sort after a real run with the same first
        // PFN and hide it from the binary search.
        if count > 0 {
            runs.push(Run {
                first: Pfn(first),
                count,
                slot,
            });
        }
        slot = slot
            .checked_add(count)
            .ok_or_else(|| corrupt(format!("{what} page counts overflow")))?;
    }
    runs.sort_by_key(|r| r.first);
    for w in runs.windows(2) {
        if w[0].first.0 + w[0].count > w[1].first.0 {
            return Err(corrupt(format!(
                "{what}s overlap: PFNs {:#x}+{:#x} and {:#x}+{:#x} (a frame may be stored once)",
                w[0].first.0, w[0].count, w[1].first.0, w[1].count
            )));
        }
    }
    Ok(runs)
}

/// Type 1: the PHYSICAL_MEMORY_DESCRIPTOR64 at 0x88, pages packed from 0x2000 (facts 1.2).
fn full(file: &[u8], warnings: &mut Vec<String>) -> Result<(Index, Layout)> {
    let n = u32_at(file, off::PHYS_MEM_BLOCK);
    let declared = u64_at(file, off::PHYS_MEM_BLOCK + 8);
    if n == PAGE_FILL_U32 {
        return Err(corrupt(
            "the type-1 run descriptor holds only the \"PAGE\" fill (no runs were written)".into(),
        ));
    }
    if u64::from(n) > MAX_RUNS_QEMU {
        return Err(corrupt(format!(
            "the type-1 descriptor claims {n} runs; at most {MAX_RUNS_QEMU} fit the header"
        )));
    }
    if u64::from(n) > MAX_RUNS_STRICT {
        warnings.push(format!("the type-1 descriptor has {n} runs; the 43rd spills into header padding (QEMU elf2dmp does this)"));
    }
    let raw: Vec<(u64, u64)> = (0..n as usize)
        .map(|i| {
            (
                u64_at(file, off::PHYS_MEM_BLOCK + 0x10 + 16 * i),
                u64_at(file, off::PHYS_MEM_BLOCK + 0x18 + 16 * i),
            )
        })
        .collect();
    let runs = runs_index(&raw, "run")?;
    let total: u64 = runs.iter().map(|r| r.count).sum();
    if total != declared {
        warnings.push(format!(
            "the runs add up to {total} pages but NumberOfPages says {declared}; the runs are used"
        ));
    }
    let layout = Layout {
        first_page_offset: HEADER_SIZE,
        pages_end: HEADER_SIZE.saturating_add(total.saturating_mul(PAGE_SIZE)),
        declared_pages: total,
        runs: runs.len(),
        bitmap_bits: None,
        summary_signature: None,
    };
    Ok((Index::Runs(runs), layout))
}

/// Types 5/6: SDMP/FDMP summary header and bitmap at 0x2000 (facts 1.4).
fn bitmap(file: &[u8]) -> Result<(Index, Layout)> {
    const H: usize = HEADER_SIZE as usize;
    need(file, HEADER_SIZE + 0x38, "bitmap summary header")?;
    let sig = &file[H..H + 4];
    // kdmp-parser (C++ and Rust) accepts either signature for either type (facts 1.4, gap G1).
    if sig != b"SDMP" && sig != b"FDMP" {
        return Err(corrupt(format!(
            "the bitmap summary header at 0x2000 has signature {:?}, expected \"SDMP\" or \"FDMP\"",
            String::from_utf8_lossy(sig)
        )));
    }
    if &file[H + 4..H + 8] != b"DUMP" {
        return Err(corrupt(format!(
            "the bitmap summary header's ValidDump is {:?}, expected \"DUMP\"",
            String::from_utf8_lossy(&file[H + 4..H + 8])
        )));
    }
    let first_page = u64_at(file, H + 0x20);
    let present = u64_at(file, H + 0x28);
    let bits = u64_at(file, H + 0x30);
    if bits > MAX_PFN {
        return Err(corrupt(format!(
            "the bitmap claims {bits:#x} bits, more than 52-bit physical memory has frames"
        )));
    }
    let bitmap_end = HEADER_SIZE + 0x38 + bits.div_ceil(8);
    // Checked against the file before anything is allocated: a hostile bit count cannot make us
    // copy more than the file holds.
    need(file, bitmap_end, "page bitmap")?;
    if first_page < bitmap_end {
        return Err(corrupt(format!("the first page offset {first_page:#x} lies inside the bitmap (which ends at {bitmap_end:#x})")));
    }
    let bm = Bitmap::new(&file[H + 0x38..bitmap_end as usize], bits);
    if bm.ones() != present {
        return Err(corrupt(format!(
            "the bitmap has {} bits set but the summary header says {present} pages are present",
            bm.ones()
        )));
    }
    let layout = Layout {
        first_page_offset: first_page,
        pages_end: first_page.saturating_add(present.saturating_mul(PAGE_SIZE)),
        declared_pages: present,
        runs: 0,
        bitmap_bits: Some(bits),
        summary_signature: Some(String::from_utf8_lossy(sig).into_owned()),
    };
    Ok((Index::Bitmap(bm), layout))
}

/// Types 8/9/10: RDMP header and PFN ranges at 0x2000 (facts 1.5).
fn rdmp(file: &[u8], ty: DumpType, warnings: &mut Vec<String>) -> Result<(Index, Layout)> {
    const H: usize = HEADER_SIZE as usize;
    need(file, HEADER_SIZE + 0x30, "RDMP header")?;
    let marker = u32_at(file, H);
    if marker != 0x40 || &file[H + 4..H + 8] != b"RDMP" || &file[H + 8..H + 12] != b"DUMP" {
        return Err(corrupt(format!(
            "the RDMP header at 0x2000 reads marker {marker:#x}, {:?}, {:?}; expected 0x40, \"RDMP\", \"DUMP\"",
            String::from_utf8_lossy(&file[H + 4..H + 8]),
            String::from_utf8_lossy(&file[H + 8..H + 12])
        )));
    }
    let metadata = u64_at(file, H + 0x10);
    let first_page = u64_at(file, H + 0x18);
    // Both peers require FirstPageOffset = 0x2020 + MetadataSize (facts 1.5); computed checked
    // (kdmp-parser-rs panics on crafted values here, facts 2.4).
    if 0x2020u64.checked_add(metadata) != Some(first_page) {
        return Err(corrupt(format!(
            "RDMP MetadataSize {metadata:#x} and FirstPageOffset {first_page:#x} disagree (expected FirstPageOffset = 0x2020 + MetadataSize)"
        )));
    }
    need(file, first_page, "RDMP range list")?;
    let total_declared = (ty == DumpType::Complete).then(|| u64_at(file, H + 0x28));
    let mut raw = Vec::new();
    let mut sum = 0u64;
    let mut at = H as u64 + 0x30;
    // The scan is bounded to [0x2030, FirstPageOffset): peers read one entry past the metadata,
    // into the first page (facts 1.5).
    while at + 16 <= first_page {
        let pfn = u64_at(file, at as usize);
        let count = u64_at(file, at as usize + 8);
        if count == 0 {
            if pfn != 0 {
                warnings.push(format!("RDMP range at file offset {at:#x} starts at PFN {pfn:#x} with 0 pages; the range list ends there"));
            }
            break;
        }
        // A range starting at PFN 0 is memory like any other here; both peers take it for the end
        // of the list and lose everything after it (facts 1.5, gap G3).
        raw.push((pfn, count));
        sum = sum.saturating_add(count);
        at += 16;
        if total_declared.is_some_and(|t| sum >= t) {
            break; // type 10 is bounded by TotalNumberOfPages (facts 1.5, kdmp-parser fix #28)
        }
    }
    if let Some(t) = total_declared {
        if sum != t {
            return Err(corrupt(format!(
                "the RDMP ranges add up to {sum} pages but TotalNumberOfPages says {t}"
            )));
        }
        let n = u32_at(file, H + 0x20);
        if u64::from(n) != raw.len() as u64 {
            warnings.push(format!(
                "RDMP NumberOfRanges says {n} but {} ranges were found",
                raw.len()
            ));
        }
    }
    let runs = runs_index(&raw, "RDMP range")?;
    let layout = Layout {
        first_page_offset: first_page,
        pages_end: first_page.saturating_add(sum.saturating_mul(PAGE_SIZE)),
        declared_pages: sum,
        runs: runs.len(),
        bitmap_bits: None,
        summary_signature: None,
    };
    Ok((Index::Runs(runs), layout))
}

/// Builds the index for `header.dump_type` and adds warnings about the file as a whole.
pub(crate) fn build(
    file: &[u8],
    header: &Header,
    warnings: &mut Vec<String>,
) -> Result<(Index, Layout)> {
    let (index, layout) = match header.dump_type {
        DumpType::Full => full(file, warnings)?,
        DumpType::BitmapFull | DumpType::BitmapKernel => bitmap(file)?,
        DumpType::Kernel | DumpType::KernelActive | DumpType::Complete => {
            rdmp(file, header.dump_type, warnings)?
        }
    };
    let len = file.len() as u64;
    if layout.pages_end > len {
        let whole = len.saturating_sub(layout.first_page_offset) / PAGE_SIZE;
        warnings.push(format!(
            "the file is truncated: it is {len:#x} bytes but the pages end at {:#x}; {} of {} pages are readable, the rest fail to read",
            layout.pages_end,
            whole.min(layout.declared_pages),
            layout.declared_pages
        ));
    }
    let required = header.required_dump_space;
    if required > len {
        warnings.push(format!("RequiredDumpSpace is {required:#x} bytes but the file has only {len:#x}: the dump was cut short"));
    } else if required < layout.pages_end {
        warnings.push(format!(
            "RequiredDumpSpace {required:#x} ends before the page data ({:#x})",
            layout.pages_end
        ));
    }
    // DUMP_FILE_ATTRIBUTES.InsufficientDumpfileSize (facts 1.6).
    if header.attributes & (1 << 2) != 0 {
        warnings.push("the dump writer ran out of space (Attributes.InsufficientDumpfileSize): pages were dropped".into());
    }
    if header.context.mx_csr != header.context.flt_mx_csr {
        warnings.push(format!(
            "CONTEXT.MxCsr {:#x} differs from FltSave.MxCsr {:#x} (Windows keeps them equal; the C++ kdmp-parser rejects such dumps)",
            header.context.mx_csr, header.context.flt_mx_csr
        ));
    }
    let dtb_pfn = header.dtb().pfn();
    if index.slot(dtb_pfn).is_none() {
        warnings.push(format!("the page of the DirectoryTableBase {:#x} is not in the dump: kernel addresses cannot be translated", header.directory_table_base));
    }
    Ok((index, layout))
}
