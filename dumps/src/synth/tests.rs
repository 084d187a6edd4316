use super::*;
use crate::pxe;

#[test]
fn memory_is_sparse_and_allocates_above_pfn_0() {
    let mut m = Memory::new();
    let a = m.alloc_pages(3);
    assert!(a.pfn().0 >= 1);
    assert_eq!(m.frame_count(), 3);
    // Straddles two frames; the second is materialised on write.
    m.write(Gpa(a.u64() + 3 * 4096 - 2), &[1, 2, 3, 4]);
    assert_eq!(m.frame_count(), 4);
    let mut b = [0xAA; 6];
    m.read(Gpa(a.u64() + 3 * 4096 - 3), &mut b);
    assert_eq!(b, [0, 1, 2, 3, 4, 0]);
    let mut z = [0xAA; 4];
    m.read(Gpa(0x7777_0000), &mut z);
    assert_eq!(z, [0; 4]);
    // The next allocation lands above the frame written by hand.
    let c = m.alloc_pages(1);
    assert_eq!(c.pfn().0, a.pfn().0 + 4);
    let pfns: Vec<u64> = m.frames().map(|(p, _)| p.0).collect();
    assert!(pfns.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn page_tables_map_all_sizes_and_self_reference() {
    let mut m = Memory::new();
    let mut pt = PageTables::new(&mut m);
    let self_ref = m.read_u64(Gpa(pt.pml4.u64() + 8 * SELF_REF_INDEX));
    assert_eq!(self_ref & pxe::PFN_MASK, pt.pml4.u64());
    let k = Gva(0xFFFF_F800_0000_0000);
    pt.map(
        &mut m,
        k,
        Gpa(0x20_0000),
        PageSize::M2,
        PteFlags {
            pat: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        pt.translate(&m, Gva(k.u64() + 0x1234)),
        Some(Gpa(0x20_1234))
    );
    pt.map(
        &mut m,
        Gva(0xFFFF_F840_0000_0000),
        Gpa(0x4000_0000),
        PageSize::G1,
        PteFlags::default(),
    )
    .unwrap();
    assert_eq!(
        pt.translate(&m, Gva(0xFFFF_F840_0000_5678)),
        Some(Gpa(0x4000_5678))
    );
    assert!(matches!(
        pt.map(
            &mut m,
            Gva(k.u64() + 0x1000),
            Gpa(0x9000),
            PageSize::K4,
            PteFlags::default()
        ),
        Err(SynthError::LargePageInTheWay {
            level: crate::Level::Pde,
            ..
        })
    ));
    assert!(matches!(
        pt.map(
            &mut m,
            Gva(0x1000),
            Gpa(0x1800),
            PageSize::K4,
            PteFlags::default()
        ),
        Err(SynthError::Misaligned { .. })
    ));
    assert!(matches!(
        pt.map(
            &mut m,
            Gva(0x8000_0000_0000),
            Gpa(0x1000),
            PageSize::K4,
            PteFlags::default()
        ),
        Err(SynthError::NonCanonical(_))
    ));
}

#[test]
fn map_new_and_virtual_io() {
    let mut m = Memory::new();
    let mut pt = PageTables::new(&mut m);
    let va = Gva(0xFFFF_8000_1234_0F00);
    pt.map_new(&mut m, va, 0x300).unwrap(); // two pages
    let data: Vec<u8> = (0..0x300u32).map(|i| i as u8).collect();
    pt.write_virt(&mut m, va, &data).unwrap();
    let mut back = vec![0; 0x300];
    pt.read_virt(&m, va, &mut back).unwrap();
    assert_eq!(back, data);
    assert_eq!(
        pt.map_new(&mut m, Gva(0xFFFF_8000_1234_1000), 1),
        Err(SynthError::AlreadyMapped(Gva(0xFFFF_8000_1234_1000)))
    );
    assert_eq!(
        pt.write_virt(&mut m, Gva(0xFFFF_8000_1234_2000), &[1]),
        Err(SynthError::Unmapped(Gva(0xFFFF_8000_1234_2000)))
    );
    // A raw transition PTE is stored as given and is not a hardware mapping.
    let t = Gva(0xFFFF_8000_5555_0000);
    pt.set_pte_raw(&mut m, t, 0x7000 | pxe::TRANSITION).unwrap();
    assert_eq!(pt.translate(&m, t), None);
}
