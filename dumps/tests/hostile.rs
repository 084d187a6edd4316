//! Hostile input: random truncations, byte flips and extreme field values over valid dumps of
//! every type. Opening and reading must return `Ok` or `Err`, never panic, never hang.
//!
//! A small deterministic generator (xorshift) instead of `proptest`: no new dependency, every case
//! is reproducible from the printed seed, and the mutations are aimed at the fields that drive
//! the layout (run lists, bitmap header, RDMP header), which blind shrinking would not find faster.

mod common;

use common::*;
use dumps::synth::{write_dump, DumpKind, DumpSpec, Memory, PageSize, PageTables, PteFlags};
use dumps::{pxe, Dump, Gpa, Gva, Pfn, Reader};

const VAS: [u64; 6] = [
    0xFFFF_F800_0010_0000,
    0xFFFF_F800_0010_1FFC,
    0xFFFF_F800_0200_0000,
    0xFFFF_F800_0600_0000,
    0,
    u64::MAX - 3,
];

fn small_dump(kind: DumpKind) -> Vec<u8> {
    let mut mem = Memory::new();
    let mut pt = PageTables::new(&mut mem);
    pt.map_new(&mut mem, Gva(VAS[0]), 0x3000).unwrap();
    pt.write_virt(&mut mem, Gva(VAS[0]), &[0x5A; 0x3000])
        .unwrap();
    pt.map(
        &mut mem,
        Gva(VAS[2]),
        Gpa(0x4000_0000),
        PageSize::M2,
        PteFlags {
            pat: true,
            ..PteFlags::default()
        },
    )
    .unwrap();
    pt.set_pte_raw(&mut mem, Gva(VAS[3]), 0x10_1000 | pxe::TRANSITION)
        .unwrap();
    let f = TempFile::new(&format!("hostile-{}.dmp", kind.value()));
    let spec = DumpSpec {
        kind,
        dtb: pt.pml4.u64(),
        bitmap_bits: Some(0x4000_0000 / 4096 + 13),
        ..DumpSpec::default()
    };
    write_dump(f.path(), &mem, &spec).unwrap();
    std::fs::read(f.path()).unwrap()
}

/// Everything a caller might do with a dump that opened.
fn exercise(d: &Dump, rng: &mut Rng) {
    let _ = d.header().dtb();
    let _ = d.warnings().len();
    let mut buf = vec![0u8; 0x2345];
    for pfn in d.pfns().take(64) {
        let _ = d.page(pfn);
        let _ = d.read_phys(Gpa(pfn.gpa().u64() + 0x801), &mut buf);
    }
    for _ in 0..16 {
        let gpa = Gpa(rng.next() >> rng.below(64));
        let _ = d.read_phys(gpa, &mut buf[..rng.below(0x2345) as usize]);
        let _ = d.read_phys_zero_fill(gpa, &mut buf[..64]);
        let _ = d.page(Pfn(rng.next() >> rng.below(64)));
    }
    for dtb in [d.dtb(), Gpa(rng.next())] {
        for tr in [false, true] {
            let r = Reader::with_dtb(d, dtb).transitions(tr);
            for va in VAS
                .iter()
                .copied()
                .chain([rng.next(), rng.next() | 0xFFFF_8000_0000_0000])
            {
                let _ = r.translate(Gva(va));
                let _ = r.read_best_effort(Gva(va), &mut buf[..0x1800]);
                let _ = r.read_exact(Gva(va), &mut buf[..8]);
            }
        }
    }
}

/// Offsets whose corruption changes the layout: run descriptor, DumpType, required space,
/// attributes, and the first bytes of the bitmap / RDMP header.
const HOT: [(usize, usize); 6] = [
    (0x010, 0x018),
    (0x088, 0x140),
    (0xF98, 0xFA8),
    (0x1050, 0x1054),
    (0x2000, 0x2060),
    (0x3000, 0x3010),
];

fn mutate(orig: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = orig.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(5) {
            0 => {
                let cut = rng.below(b.len() as u64 + 1) as usize;
                b.truncate(cut);
            }
            1 => {
                if !b.is_empty() {
                    let i = rng.below(b.len() as u64) as usize;
                    b[i] ^= 1 << rng.below(8);
                }
            }
            _ => {
                let (lo, hi) = HOT[rng.below(HOT.len() as u64) as usize];
                let at = lo + (rng.below(((hi - lo) / 8) as u64) as usize) * 8;
                let v = match rng.below(6) {
                    0 => 0,
                    1 => u64::MAX,
                    2 => 1 << rng.below(64),
                    3 => rng.below(64),
                    4 => 0x4547_4150_4547_4150, // "PAGEPAGE"
                    _ => rng.next(),
                };
                if at + 8 <= b.len() {
                    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
                }
            }
        }
    }
    b
}

#[test]
fn mutated_dumps_never_panic() {
    let iterations: u64 = std::env::var("HOSTILE_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    for kind in ALL_KINDS {
        let orig = small_dump(kind);
        let ok = Dump::from_bytes(orig.clone()).unwrap();
        assert!(ok.warnings().is_empty(), "{kind:?}: {:?}", ok.warnings());
        let mut opened = 0;
        for i in 0..iterations {
            let seed = (u64::from(kind.value()) << 32) | (i + 1);
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let bytes = mutate(&orig, &mut rng);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if let Ok(d) = Dump::from_bytes(bytes) {
                    exercise(&d, &mut rng);
                    true
                } else {
                    false
                }
            }));
            match result {
                Ok(o) => opened += u32::from(o),
                Err(_) => panic!("panic on {kind:?} mutation seed {seed:#x}"),
            }
        }
        // The mutations must leave a good share of dumps openable, or reads are never exercised.
        assert!(
            opened as u64 > iterations / 10,
            "{kind:?}: only {opened} of {iterations} mutated dumps opened"
        );
    }
}

#[test]
fn every_truncation_length_of_the_headers() {
    for kind in ALL_KINDS {
        let orig = small_dump(kind);
        let mut rng = Rng(7);
        // Every cut through the header area and the bitmap/RDMP page, then page-granular cuts.
        let cuts = (0x1FF0..0x3010).chain((0x3000..orig.len()).step_by(0x800));
        for cut in cuts {
            if let Ok(d) = Dump::from_bytes(orig[..cut].to_vec()) {
                assert!(cut >= 0x2000);
                exercise(&d, &mut rng);
            }
        }
    }
}

#[test]
fn huge_declared_sizes_do_not_allocate() {
    // A bitmap claiming 2^40 bits (128 GiB of bitmap) in a small file must fail before copying.
    let mut b = small_dump(DumpKind::BitmapFull);
    b[0x2030..0x2038].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(matches!(
        Dump::from_bytes(b),
        Err(dumps::Error::Truncated {
            what: "page bitmap",
            ..
        })
    ));
    // An RDMP range list claiming to end far beyond the file.
    let mut r = small_dump(DumpKind::Kernel);
    r[0x2010..0x2018].copy_from_slice(&(1u64 << 50).to_le_bytes());
    r[0x2018..0x2020].copy_from_slice(&((1u64 << 50) + 0x2020).to_le_bytes());
    assert!(matches!(
        Dump::from_bytes(r),
        Err(dumps::Error::Truncated { .. })
    ));
    // Ranges whose pages lie past EOF: opens (truncated) and reads fail cleanly.
    let mut r = small_dump(DumpKind::Kernel);
    r[0x2038..0x2040].copy_from_slice(&(1u64 << 39).to_le_bytes());
    let d = Dump::from_bytes(r).unwrap();
    assert!(d.warnings().iter().any(|w| w.contains("truncated")));
    assert_eq!(d.page_count(), 1 << 39);
}
