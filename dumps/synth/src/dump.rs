//! Turns the built address space into physical memory, 4-level page tables (self-reference PML4
//! entry at 0x1ED, from `dumps::synth`) and a dump file.

use std::ops::Range;
use std::path::Path;

use dumps::synth::{DumpKind, DumpSpec, Memory, PageSize, PageTables, PteFlags};
use dumps::Gva;

use crate::space::{Pages, PAGE};
use crate::Error;

/// Physical memory with the address space mapped in, and its DTB.
pub struct Physical {
    pub mem: Memory,
    pub dtb: u64,
}

/// Gives every virtual page a frame (in ascending VA order, so the result is deterministic) and
/// maps it through fresh page tables.
pub fn physical(sp: &Pages) -> Result<Physical, Error> {
    let mut mem = Memory::new();
    let mut pt = PageTables::new(&mut mem);
    for (va, page) in sp.iter() {
        let pa = mem.alloc_pages(1);
        mem.write(pa, page);
        pt.map(&mut mem, Gva(va), pa, PageSize::K4, PteFlags::default())
            .map_err(|e| Error::Layout(format!("mapping {va:#x}: {e}")))?;
    }
    Ok(Physical {
        mem,
        dtb: pt.pml4.u64(),
    })
}

/// Header values of the dump.
pub struct Header {
    pub dump_type: u32,
    pub build: u32,
    pub processors: u32,
    pub system_time: u64,
    pub uptime_100ns: u64,
    pub product_type: u32,
    pub ps_loaded_module_list: u64,
    pub ps_active_process_head: u64,
    pub kd_debugger_data_block: u64,
    pub pfn_database: u64,
    pub ram_pages: u64,
    pub filler: bool,
    pub comment: String,
}

/// Writes the dump; returns its logical size.
pub fn write(path: &Path, p: &Physical, h: &Header) -> Result<u64, Error> {
    let kind = match h.dump_type {
        1 => DumpKind::Full,
        5 => DumpKind::BitmapFull,
        6 => DumpKind::BitmapKernel,
        8 => DumpKind::Kernel,
        t => {
            return Err(Error::Scenario(format!(
                "dump type {t} is not one of 1, 5, 6, 8"
            )))
        }
    };
    let used = p.mem.frames().last().map_or(0, |(pfn, _)| pfn.0 + 1);
    if used > h.ram_pages {
        return Err(Error::Scenario(format!(
            "the machine's {} MiB of RAM cannot hold the {} MiB the builder laid out; raise ram_mib",
            (h.ram_pages * PAGE) >> 20,
            (used * PAGE) >> 20
        )));
    }
    // Filler starts at PFN 1: a range starting at PFN 0 ends the peers' range list (facts 1.5).
    let filler: Vec<Range<u64>> = if h.filler {
        std::iter::once(1..h.ram_pages).collect()
    } else {
        Vec::new()
    };
    let spec = DumpSpec {
        kind,
        dtb: p.dtb,
        pfn_database: h.pfn_database,
        ps_loaded_module_list: h.ps_loaded_module_list,
        ps_active_process_head: h.ps_active_process_head,
        kd_debugger_data_block: h.kd_debugger_data_block,
        build: h.build,
        processors: h.processors,
        system_time: h.system_time,
        system_uptime: h.uptime_100ns,
        product_type: h.product_type,
        comment: h.comment.chars().take(127).collect(),
        filler,
        bitmap_bits: Some(h.ram_pages.next_multiple_of(8)),
        ..DumpSpec::default()
    };
    dumps::synth::write_dump(path, &p.mem, &spec)
        .map_err(|e| Error::Io(format!("writing {}: {e}", path.display())))
}
