//! Shared fixtures: one address space with every kind of mapping the reader must handle, written
//! as any dump type.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use dumps::pxe;
use dumps::synth::{write_dump, DumpKind, DumpSpec, Memory, PageSize, PageTables, PteFlags};
use dumps::{Gpa, Gva};

pub const ALL_KINDS: [DumpKind; 6] = [
    DumpKind::Full,
    DumpKind::BitmapFull,
    DumpKind::BitmapKernel,
    DumpKind::Kernel,
    DumpKind::KernelActive,
    DumpKind::Complete,
];

/// Deterministic xorshift64 bytes.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn fill(&mut self, b: &mut [u8]) {
        for c in b.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}

/// A file deleted on drop.
pub struct TempFile(pub PathBuf);
impl TempFile {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("portleak-dumps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir.join(name))
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        // Succeeds only once the last file of this process is gone.
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

pub const KDATA: u64 = 0xFFFF_F800_0010_0000;
pub const UDATA: u64 = 0x0000_7FF6_0000_0000;
pub const LARGE_PAT: u64 = 0xFFFF_F800_0200_0000;
pub const LARGE: u64 = 0xFFFF_F800_0400_0000;
pub const HUGE_PAT: u64 = 0xFFFF_F840_0000_0000;
pub const HUGE_PA: u64 = 0x1_0000_0000;
pub const TRANSITION_VA: u64 = 0xFFFF_F800_0600_0000;
pub const TRANSITION_HIGH_VA: u64 = TRANSITION_VA + 0x1000;
pub const PROTOTYPE_VA: u64 = TRANSITION_VA + 0x2000;
pub const ABSENT_FRAME_VA: u64 = 0xFFFF_F800_0700_0000;
pub const ABSENT_FRAME_PA: u64 = 0x3_0000_0000;
pub const ABSENT_TABLE_VA: u64 = 0xFFFF_F800_0800_0000;
pub const ABSENT_TABLE_PA: u64 = 0x3_1000_0000;

/// The fixture address space and what the reader should find in it.
pub struct Scenario {
    pub mem: Memory,
    pub pt: PageTables,
    /// VAs whose translation is hardware-valid, with the right physical address and page size.
    pub mapped: Vec<(Gva, Gpa, PageSize)>,
    /// Frame behind the transition PTEs.
    pub transition_frame: Gpa,
}

fn pte_slot(mem: &Memory, pml4: Gpa, va: Gva, level: usize) -> Gpa {
    let idx = [va.pml4e_idx(), va.pdpte_idx(), va.pde_idx(), va.pte_idx()];
    let mut table = pml4;
    for &i in &idx[..level] {
        table = Gpa(mem.read_u64(Gpa(table.u64() + 8 * i)) & pxe::PFN_MASK);
    }
    Gpa(table.u64() + 8 * idx[level])
}

fn aligned_frames(mem: &mut Memory, count: u64, align_pages: u64) -> Gpa {
    let next = mem.alloc_pages(0).pfn().0;
    let pad = (align_pages - next % align_pages) % align_pages;
    mem.alloc_pages(pad);
    mem.alloc_pages(count)
}

pub fn scenario(seed: u64) -> Scenario {
    let mut rng = Rng(seed | 1);
    let mut mem = Memory::new();
    let mut pt = PageTables::new(&mut mem);
    let mut mapped = Vec::new();

    // 4 KiB kernel data (six pages) and user data (two pages), random content.
    pt.map_new(&mut mem, Gva(KDATA), 6 * 0x1000).unwrap();
    pt.map_new(&mut mem, Gva(UDATA), 2 * 0x1000).unwrap();
    for (va, n) in [(KDATA, 6u64), (UDATA, 2)] {
        let mut b = vec![0u8; (n * 0x1000) as usize];
        rng.fill(&mut b);
        pt.write_virt(&mut mem, Gva(va), &b).unwrap();
        for i in 0..n {
            let v = Gva(va + i * 0x1000);
            mapped.push((v, pt.translate(&mem, v).unwrap(), PageSize::K4));
        }
    }

    // 2 MiB pages with and without PAT (facts 3.1), a few frames with content.
    for (va, pat) in [(LARGE_PAT, true), (LARGE, false)] {
        let pa = aligned_frames(&mut mem, 512, 512);
        let flags = PteFlags {
            pat,
            no_execute: false,
            ..PteFlags::default()
        };
        pt.map(&mut mem, Gva(va), pa, PageSize::M2, flags).unwrap();
        for off in [0u64, 0x1000, 0x1234, 0x1F_F000] {
            let mut b = [0u8; 64];
            rng.fill(&mut b);
            mem.write(Gpa(pa.u64() + off), &b);
            mapped.push((Gva(va + off), Gpa(pa.u64() + off), PageSize::M2));
        }
    }

    // 1 GiB page with PAT whose frames are mostly absent from the dump.
    pt.map(
        &mut mem,
        Gva(HUGE_PAT),
        Gpa(HUGE_PA),
        PageSize::G1,
        PteFlags {
            pat: true,
            ..PteFlags::default()
        },
    )
    .unwrap();
    for off in [0u64, 0x1000, 0x20_3000] {
        let mut b = [0u8; 4096];
        rng.fill(&mut b);
        mem.write(Gpa(HUGE_PA + off), &b);
        mapped.push((
            Gva(HUGE_PAT + off + 0x10),
            Gpa(HUGE_PA + off + 0x10),
            PageSize::G1,
        ));
    }

    // Software PTEs (facts 3.2): transition (plain and with a flag in PFN bit 45) and prototype.
    let transition_frame = mapped[0].1;
    pt.set_pte_raw(
        &mut mem,
        Gva(TRANSITION_VA),
        transition_frame.u64() | pxe::TRANSITION | (4 << 5),
    )
    .unwrap();
    pt.set_pte_raw(
        &mut mem,
        Gva(TRANSITION_HIGH_VA),
        transition_frame.u64() | (1 << 45) | pxe::TRANSITION,
    )
    .unwrap();
    pt.set_pte_raw(
        &mut mem,
        Gva(PROTOTYPE_VA),
        transition_frame.u64() | pxe::TRANSITION | pxe::PROTOTYPE,
    )
    .unwrap();

    // A valid PTE whose frame is not in the dump.
    pt.map(
        &mut mem,
        Gva(ABSENT_FRAME_VA),
        Gpa(ABSENT_FRAME_PA),
        PageSize::K4,
        PteFlags::default(),
    )
    .unwrap();

    // A valid PDE whose page table is not in the dump.
    pt.map_new(&mut mem, Gva(ABSENT_TABLE_VA), 0x1000).unwrap();
    let pde = pte_slot(&mem, pt.pml4, Gva(ABSENT_TABLE_VA), 2);
    mem.write(
        pde,
        &(ABSENT_TABLE_PA | pxe::PRESENT | pxe::WRITABLE).to_le_bytes(),
    );

    Scenario {
        mem,
        pt,
        mapped,
        transition_frame,
    }
}

/// A spec whose every header field differs from the defaults, so a reader that mixes fields up
/// is caught.
pub fn spec(kind: DumpKind, s: &Scenario) -> DumpSpec {
    let mut spec = DumpSpec {
        kind,
        dtb: s.pt.pml4.u64() | 0x2, // PCID bits (facts 3.1)
        pfn_database: 0xFFFF_C000_0000_0000,
        ps_loaded_module_list: 0xFFFF_F806_1F23_4560,
        ps_active_process_head: 0xFFFF_F806_1F23_7890,
        kd_debugger_data_block: 0xFFFF_F806_1F40_0000,
        build: 22621,
        processors: 7,
        bugcheck_code: 0x161,
        bugcheck_params: [1, 0xFFFF_FFFF_FFFF_FFFF, 3, 0x4000],
        system_time: 133_600_000_123_456_789,
        system_uptime: 123_456_789_012,
        product_type: 1,
        suite_mask: 0x310,
        comment: "portleak test dump".into(),
        boot_id: 0x1234,
        ..DumpSpec::default()
    };
    spec.context.rip = 0xFFFF_F806_1F00_1234;
    spec.context.gpr = std::array::from_fn(|i| 0x1111 * (i as u64 + 1));
    spec.exception.code = 0x8000_0003;
    spec.exception.address = spec.context.rip;
    spec.exception.number_parameters = 2;
    spec.exception.information[1] = 0xDEAD;
    spec
}

/// Writes the scenario as `kind` and returns the file.
pub fn write(kind: DumpKind, s: &Scenario, tag: &str) -> (TempFile, DumpSpec) {
    let f = TempFile::new(&format!("{tag}-{}.dmp", kind.value()));
    let spec = spec(kind, s);
    write_dump(f.path(), &s.mem, &spec).unwrap();
    (f, spec)
}
