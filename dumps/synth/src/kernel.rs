//! ntoskrnl state: module images on PsLoadedModuleList, processes on PsActiveProcessHead,
//! KUSER_SHARED_DATA and an unencoded KDDEBUGGER_DATA64 (MEMORY-MODEL.md "Kernel").

use std::collections::BTreeMap;

use crate::modules::{Module, NtOffsets};
use crate::scenario::Scenario;
use crate::space::{Obj, Pages, Pool, Space, PAGE};
use crate::Error;

pub const KUSER: u64 = 0xFFFF_F780_0000_0000;
/// 2^32 ticks of 10 ms: the KB2553549 wrap point (facts 3.1).
pub const TICKS_PER_SEC_100NS: u64 = 10_000_000;

/// A module image placed in the address space.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub base: u64,
    pub size: u32,
}

impl Loaded {
    pub fn va(&self, rva: u32) -> u64 {
        self.base + u64::from(rva)
    }
}

/// Maps a PE image the way the loader does: headers, then each section at its RVA; the rest of
/// SizeOfImage is zero.
pub fn map_image(sp: &mut Pages, base: u64, pe: &[u8]) -> Result<Loaded, Error> {
    let bad = |m: &str| Error::Module(format!("PE image for {base:#x}: {m}"));
    let u16_at = |o: usize| {
        pe.get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .ok_or_else(|| bad("truncated"))
    };
    let u32_at = |o: usize| {
        pe.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| bad("truncated"))
    };
    if pe.get(..2) != Some(b"MZ") {
        return Err(bad("no MZ signature"));
    }
    let nt = u32_at(0x3C)? as usize;
    if pe.get(nt..nt + 4) != Some(b"PE\0\0") {
        return Err(bad("no PE signature"));
    }
    let sections = u16_at(nt + 6)? as usize;
    let opt = nt + 24;
    let opt_size = u16_at(nt + 20)? as usize;
    let size_of_image = u32_at(opt + 56)?;
    let size_of_headers = u32_at(opt + 60)? as usize;
    if size_of_image == 0 || size_of_image > 64 << 20 {
        return Err(bad("SizeOfImage is 0 or above 64 MiB"));
    }
    sp.map(base, u64::from(size_of_image));
    sp.write(base, pe.get(..size_of_headers.min(pe.len())).unwrap_or(&[]))?;
    for i in 0..sections {
        let s = opt + opt_size + i * 40;
        let vsize = u32_at(s + 8)?;
        let rva = u32_at(s + 12)?;
        let raw_size = u32_at(s + 16)? as usize;
        let raw_ptr = u32_at(s + 20)? as usize;
        let n = raw_size
            .min(vsize.max(raw_size as u32) as usize)
            .min(pe.len().saturating_sub(raw_ptr));
        if u64::from(rva) + n as u64 > u64::from(size_of_image) {
            return Err(bad("a section lies past SizeOfImage"));
        }
        sp.write(
            base + u64::from(rva),
            pe.get(raw_ptr..raw_ptr + n).unwrap_or(&[]),
        )?;
    }
    Ok(Loaded {
        base,
        size: size_of_image,
    })
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|c| c.to_le_bytes()).collect()
}

/// Links one _KLDR_DATA_TABLE_ENTRY per module on PsLoadedModuleList (head inside nt's image).
pub fn module_list(
    sp: &mut Pages,
    pool: &mut Pool,
    o: &NtOffsets,
    head: u64,
    mods: &[(&Module, &Loaded)],
) -> Result<Vec<u64>, Error> {
    let mut entries = Vec::new();
    for (m, at) in mods {
        let full = format!(
            "\\SystemRoot\\system32\\{}{}",
            if m.file.ends_with(".sys") {
                "drivers\\"
            } else {
                ""
            },
            m.file
        );
        let (full, base) = (utf16(&full), utf16(&m.file));
        let size = u64::from(o.kldr_size) + full.len() as u64 + base.len() as u64 + 4;
        let va = pool.alloc(sp, b"MmLd", size)?;
        let full_at = va + u64::from(o.kldr_size);
        let base_at = full_at + full.len() as u64 + 2;
        let mut e = Obj::new(size);
        e.u64(o.kldr_dll_base, at.base)
            .u64(o.kldr_entry_point, at.base + 0x1000)
            .u32(o.kldr_size_of_image, at.size)
            .u16(o.kldr_full_name, full.len() as u16)
            .u16(o.kldr_full_name + 2, full.len() as u16 + 2)
            .u64(o.kldr_full_name + 8, full_at)
            .u16(o.kldr_base_name, base.len() as u16)
            .u16(o.kldr_base_name + 2, base.len() as u16 + 2)
            .u64(o.kldr_base_name + 8, base_at)
            .bytes((full_at - va) as u32, &full)
            .bytes((base_at - va) as u32, &base);
        e.store(sp, va)?;
        entries.push(va + u64::from(o.kldr_links));
    }
    link_list(sp, head, &entries)?;
    Ok(entries)
}

/// Writes a circular doubly-linked LIST_ENTRY list: `head -> links[0] -> ... -> head`.
pub fn link_list(sp: &mut Pages, head: u64, links: &[u64]) -> Result<(), Error> {
    let nodes: Vec<u64> = std::iter::once(head).chain(links.iter().copied()).collect();
    let m = nodes.len();
    for (i, &node) in nodes.iter().enumerate() {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&nodes[(i + 1) % m].to_le_bytes());
        b[8..].copy_from_slice(&nodes[(i + m - 1) % m].to_le_bytes());
        sp.write(node, &b)?;
    }
    Ok(())
}

/// One placed process.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: u32,
    pub eprocess: u64,
}

/// Creates the _EPROCESS objects ("Proc" pool + _OBJECT_HEADER up to its Body, 0x30 on x64:
/// MEMORY-MODEL.md "Processes") and links them on
/// PsActiveProcessHead in pid order of the scenario.
pub fn processes(
    sp: &mut Pages,
    pool: &mut Pool,
    o: &NtOffsets,
    s: &Scenario,
    head: u64,
    dtb: u64,
    boot: u64,
) -> Result<BTreeMap<u32, u64>, Error> {
    let mut map = BTreeMap::new();
    let mut links = Vec::new();
    for p in &s.processes {
        let oh = u64::from(o.object_header_body);
        let block = pool.alloc(sp, b"Proc", oh + u64::from(o.eprocess_size))?;
        let ep = block + oh;
        // PointerCount / HandleCount of the object header: a live object.
        Obj::new(0x10).u64(0, 1).u64(8, 1).store(sp, block)?;
        let mut name = [0u8; 15];
        let n = p.image.len().min(14);
        name[..n].copy_from_slice(&p.image.as_bytes()[..n]);
        let mut e = Obj::new(u64::from(o.eprocess_size));
        // Pcb.Header.Type = ProcessObject (3): GH's EPROCESS test (facts 1.9).
        e.bytes(o.eprocess_type, &[3])
            .u64(o.eprocess_dtb, dtb)
            .u64(o.eprocess_pid, u64::from(p.pid))
            .u64(o.eprocess_ppid, u64::from(p.ppid))
            .u64(
                o.eprocess_create,
                boot + p.started_secs * TICKS_PER_SEC_100NS,
            )
            .bytes(o.eprocess_image, &name);
        if let Some(x) = p.exited_secs {
            e.u64(o.eprocess_exit, boot + x * TICKS_PER_SEC_100NS);
        }
        e.store(sp, ep)?;
        links.push(ep + u64::from(o.eprocess_links));
        map.insert(p.pid, ep);
    }
    link_list(sp, head, &links)?;
    Ok(map)
}

/// KUSER_SHARED_DATA (dump-format-facts 1.8, facts 1.10) at the offsets of the build's PDB.
pub fn kuser(sp: &mut Pages, o: &NtOffsets, s: &Scenario, now: u64) -> Result<(), Error> {
    const T: &str = "_KUSER_SHARED_DATA";
    let up = s.system.uptime_secs * TICKS_PER_SEC_100NS;
    let ksys = |v: u64| {
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&(v as u32).to_le_bytes());
        b[4..8].copy_from_slice(&((v >> 32) as u32).to_le_bytes());
        b[8..].copy_from_slice(&((v >> 32) as u32).to_le_bytes());
        b
    };
    let (major, minor) = version_of(s.system.build);
    let mut k = Obj::new(PAGE);
    k.u32(o.of(T, "TickCountMultiplier")?, 0x0FA0_0000)
        .bytes(o.of(T, "InterruptTime")?, &ksys(up))
        .bytes(o.of(T, "SystemTime")?, &ksys(now))
        .u16(o.of(T, "ImageNumberLow")?, 0x8664)
        .u16(o.of(T, "ImageNumberHigh")?, 0x8664)
        .bytes(o.of(T, "NtSystemRoot")?, &utf16("C:\\Windows"))
        .u32(o.of(T, "NtProductType")?, s.system.product_type)
        .bytes(o.of(T, "ProductTypeIsValid")?, &[1])
        .u32(o.of(T, "NtMajorVersion")?, major)
        .u32(o.of(T, "NtMinorVersion")?, minor)
        // 15.625 ms ticks: TickCountQuad = uptime / 156250 (MEMORY-MODEL.md).
        .u64(o.of(T, "TickCountQuad")?, up / 156_250)
        .u64(o.of(T, "InterruptTimeBias")?, 0)
        .u32(o.of(T, "ActiveProcessorCount")?, s.system.processors);
    // NtBuildNumber exists from Windows 10 on; 7601 had Reserved2 there (facts 1.10), and its
    // PDB has no such field.
    if let Ok(off) = o.of(T, "NtBuildNumber") {
        k.u32(off, s.system.build);
    }
    sp.map(KUSER, PAGE);
    k.store(sp, KUSER)
}

/// (NtMajorVersion, NtMinorVersion) of a build.
pub fn version_of(build: u32) -> (u32, u32) {
    match build {
        0..=6002 => (6, 0),
        6003..=7601 => (6, 1),
        7602..=9200 => (6, 2),
        9201..=9600 => (6, 3),
        _ => (10, 0),
    }
}

/// Values KDDEBUGGER_DATA64 points at.
pub struct KdbgInputs {
    pub kern_base: u64,
    pub ps_loaded_module_list: u64,
    pub ps_active_process_head: u64,
    pub eprocess_size: u32,
    pub eprocess_dtb: u32,
    /// Header.Size: the size of the kernel's KdDebuggerDataBlock global (0x340 on 7601, up to
    /// 0x3A0 later; dump-format-facts 1.7).
    pub size: u32,
}

/// An unencoded KDDEBUGGER_DATA64 at `va` (dump-format-facts 1.7) at the offsets of the
/// build's PDB: header List pointing to itself, OwnerTag "KDBG", Size, and the fields a reader
/// uses.
pub fn kdbg(sp: &mut Pages, o: &NtOffsets, va: u64, k: &KdbgInputs) -> Result<(), Error> {
    const T: &str = "_KDDEBUGGER_DATA64";
    let size = k.size.clamp(0x340, 0x3A0);
    let mut d = Obj::new(u64::from(size));
    d.u64(o.of(T, "Header.List.Flink")?, va)
        .u64(o.of(T, "Header.List.Blink")?, va)
        .bytes(o.of(T, "Header.OwnerTag")?, b"KDBG")
        .u32(o.of(T, "Header.Size")?, size)
        .u64(o.of(T, "KernBase")?, k.kern_base)
        .u64(o.of(T, "PsLoadedModuleList")?, k.ps_loaded_module_list)
        .u64(o.of(T, "PsActiveProcessHead")?, k.ps_active_process_head)
        .u64(o.of(T, "MmPageSize")?, PAGE)
        .u16(o.of(T, "SizeEProcess")?, k.eprocess_size as u16)
        .u16(
            o.of(T, "OffsetEprocessDirectoryTableBase")?,
            k.eprocess_dtb as u16,
        );
    d.store(sp, va)
}
