//! Internal consistency of the built-in layout tables: every candidate inside its read window,
//! no overlapping preferred fields, sane orderings, every promised build resolves.

use symbols::layouts::{
    self, AddrStorage, FieldRef, MatchKind, PortPoolRoot, RevisionMatch, StructLayout,
};

/// The builds the project promises to cover (task brief, issue 4 item 4).
const PROMISED: &[u32] = &[
    7601, 9200, 9600, 10240, 10586, 14393, 15063, 16299, 17134, 17763, 18362, 18363, 19041, 19042,
    19043, 19044, 19045, 20348, 22000, 22621, 22631, 26100,
];

fn check_struct(table: &str, s: &dyn StructLayout, errors: &mut Vec<String>) {
    let fields: Vec<FieldRef<'_>> = s.fields();
    let size = s.size();
    for f in &fields {
        for &c in &f.offset.candidates {
            let end = c as u64 + f.max_width as u64;
            if end > size as u64 {
                errors.push(format!(
                    "{table} {}.{} candidate {c:#x} (+{}) ends past read window {size:#x}",
                    s.struct_name(),
                    f.name,
                    f.max_width
                ));
            }
        }
        if f.offset.source.trim().is_empty() {
            errors.push(format!(
                "{table} {}.{} has no source",
                s.struct_name(),
                f.name
            ));
        }
    }
    for (i, a) in fields.iter().enumerate() {
        for b in &fields[i + 1..] {
            let (a0, b0) = (a.offset.preferred(), b.offset.preferred());
            if a0 < b0 + b.width && b0 < a0 + a.width {
                errors.push(format!(
                    "{table} {}: preferred {} {a0:#x}+{} overlaps {} {b0:#x}+{}",
                    s.struct_name(),
                    a.name,
                    a.width,
                    b.name,
                    b.width
                ));
            }
        }
    }
}

#[test]
fn fields_fit_and_do_not_overlap() {
    let mut errors = Vec::new();
    for t in layouts::tcpip_tables().expect("tcpip tables load") {
        for s in t.structs() {
            check_struct(&t.id, s, &mut errors);
        }
    }
    for t in layouts::afd_tables().expect("afd tables load") {
        check_struct(&t.id, &t.endpoint, &mut errors);
    }
    for t in layouts::nt_tables().expect("nt tables load") {
        for s in t.structs() {
            check_struct(&t.id, s, &mut errors);
        }
    }
    assert!(
        errors.is_empty(),
        "{} problems:\n{}",
        errors.len(),
        errors.join("\n")
    );
}

#[test]
fn every_promised_build_resolves_to_its_own_table_or_family() {
    let supported = layouts::supported_builds().expect("supported builds");
    for &b in PROMISED {
        assert!(
            supported.contains(&b),
            "build {b} is not in supported_builds()"
        );
        let t = layouts::tcpip(b, None).unwrap_or_else(|e| panic!("tcpip {b}: {e}"));
        assert_ne!(
            t.matched.kind,
            MatchKind::NearestOlder,
            "tcpip {b} fell back: {}",
            t.matched
        );
        let a = layouts::afd(b).unwrap_or_else(|e| panic!("afd {b}: {e}"));
        assert_ne!(a.matched.kind, MatchKind::NearestOlder, "afd {b}");
        let n = layouts::nt(b).unwrap_or_else(|e| panic!("nt {b}: {e}"));
        assert_ne!(n.matched.kind, MatchKind::NearestOlder, "nt {b}");
    }
}

#[test]
fn family_and_fallback_matches_are_reported() {
    let t = layouts::tcpip(19045, None).unwrap();
    assert_eq!(
        (t.matched.kind, t.matched.table_build),
        (MatchKind::SameFamily, 19041)
    );
    let t = layouts::tcpip(19500, None).unwrap();
    assert_eq!(
        (t.matched.kind, t.matched.table_build),
        (MatchKind::NearestOlder, 19041)
    );
    assert!(
        t.matched.to_string().contains("inferred from build 19041"),
        "{}",
        t.matched
    );
    let t = layouts::tcpip(30000, None).unwrap();
    assert_eq!(t.matched.table_build, 26100);
    let e = layouts::tcpip(6000, None).unwrap_err();
    assert!(
        e.to_string().contains("oldest supported build is 7600"),
        "{e}"
    );
    assert!(layouts::afd(100).is_err() && layouts::nt(100).is_err());
}

#[test]
fn tcpip_revision_selects_the_9600_variant() {
    // Facts 1.0: tcpip.sys FileVersion revision >= 19935 moved TCB owner and port-pool fields.
    let old = layouts::tcpip(9600, Some([6, 3, 9600, 17415])).unwrap();
    assert_eq!(old.matched.revision, RevisionMatch::Selected(17415));
    assert_eq!(old.tcb.owner.preferred(), 0x258);
    assert_eq!(old.port_pool.port_bitmap.preferred(), 0xA0);
    let new = layouts::tcpip(9600, Some([6, 3, 9600, 19935])).unwrap();
    assert_eq!(new.tcb.owner.preferred(), 0x260);
    assert_eq!(new.port_pool.inpa_entries.preferred(), 0x18);
    let any = layouts::tcpip(9600, None).unwrap();
    assert_eq!(any.matched.revision, RevisionMatch::Unknown);
    // The union prefers the newer revision and keeps the older one's values as candidates.
    assert_eq!(any.tcb.owner.candidates[0], 0x260);
    assert!(any.tcb.owner.allows(0x258));
    assert!(any.port_pool.port_bitmap.allows(0xA0) && any.port_pool.port_bitmap.allows(0xC8));
    assert!(any.port_pool.inpa_entries.allows(0x20));
    // Other builds ignore the revision.
    let w10 = layouts::tcpip(17763, Some([10, 0, 17763, 1])).unwrap();
    assert_eq!(w10.matched.revision, RevisionMatch::NotSplit);
}

#[test]
fn orderings_and_pairings_hold_everywhere() {
    for t in layouts::tcpip_tables().unwrap() {
        let tcb = &t.tcb;
        assert!(
            tcb.owner.preferred() > tcb.state.preferred(),
            "{}: owner after state",
            t.id
        );
        // Ports sit right after the state (MPF: State+4, State+6) for every candidate index.
        for (i, &s) in tcb.state.candidates.iter().enumerate() {
            if let (Some(&l), Some(&r)) = (
                tcb.local_port.candidates.get(i),
                tcb.remote_port.candidates.get(i),
            ) {
                assert_eq!(
                    (l, r),
                    (s + 4, s + 6),
                    "{}: TCB ports vs state candidate {i}",
                    t.id
                );
            }
        }
        // AddrInfo = InetAF + 8 (MPF) for every candidate index.
        for (a, b) in tcb.inet_af.candidates.iter().zip(&tcb.addr_info.candidates) {
            assert_eq!(a + 8, *b, "{}: AddrInfo follows InetAF", t.id);
        }
        let tw = &t.time_wait;
        let st = &tw.remote_addr_storage;
        assert!(
            !st.is_empty() && (st.len() < 2 || st[0] != st[1]) && st.len() <= 2,
            "{}: TIME_WAIT remote storage forms must each be listed once",
            t.id
        );
        assert!(!tw.local_addr_paths.is_empty() && !t.udp.local_addr_paths.is_empty());
        let pp = &t.port_pool;
        for (bm, pa) in pp
            .port_bitmap
            .candidates
            .iter()
            .zip(&pp.port_assignments.candidates)
        {
            assert_eq!(
                bm + 0x10,
                *pa,
                "{}: PortAssignments follows the RTL_BITMAP",
                t.id
            );
        }
        assert!(!pp.roots.kinds.is_empty());
        assert!(pp.entry_stride.preferred() > pp.entry_ptr.preferred());
        assert!(t.partition.stride.candidates.iter().all(|s| s % 0x40 == 0));
        assert!(t.tcb.tags.tags.len() <= 2 && !t.tcb.tags.tags.is_empty());
    }
}

#[test]
fn per_era_rules_from_the_facts_doc() {
    // Facts 1.6/2.3: global port pools up to 10586, compartment chain afterwards.
    for b in [7601, 9200, 9600, 10240, 10586] {
        let t = layouts::tcpip(b, None).unwrap();
        assert_eq!(t.port_pool.roots.kinds[0], PortPoolRoot::Globals, "{b}");
    }
    for b in [14393, 15063, 17763, 19041, 20348, 22621, 26100] {
        let t = layouts::tcpip(b, None).unwrap();
        assert_eq!(
            t.port_pool.roots.kinds[0],
            PortPoolRoot::CompartmentChain,
            "{b}"
        );
    }
    // Facts 1.3: INETAF.AddressFamily 0x14 before 9200, 0x18 after.
    assert_eq!(
        layouts::tcpip(7601, None)
            .unwrap()
            .inet_af
            .address_family
            .preferred(),
        0x14
    );
    assert_eq!(
        layouts::tcpip(9200, None)
            .unwrap()
            .inet_af
            .address_family
            .preferred(),
        0x18
    );
    // Facts 1.3: Win11 TCB state at 0x70 and TTcb tag (MPF); owner scan always available.
    let w11 = layouts::tcpip(22621, None).unwrap();
    assert_eq!(w11.tcb.state.preferred(), 0x70);
    assert_eq!(w11.tcb.tags.preferred().to_string(), "TTcb");
    assert!(w11
        .tcb
        .owner_scan
        .as_ref()
        .unwrap()
        .offsets()
        .any(|o| o == 0x2F0));
    // Facts 1.7: TIME_WAIT remote address is a pointer for V3 builds, inline for MPF ones.
    assert_eq!(
        layouts::tcpip(7601, None)
            .unwrap()
            .time_wait
            .remote_addr_storage[0],
        AddrStorage::Pointer
    );
    assert_eq!(
        layouts::tcpip(19041, None)
            .unwrap()
            .time_wait
            .remote_addr_storage[0],
        AddrStorage::Inline
    );
    // Facts 1.0: SYN endpoints are only described up to 9600.
    assert!(layouts::tcpip(9600, None).unwrap().syn.is_some());
    assert!(layouts::tcpip(10240, None).unwrap().syn.is_none());
    // Facts 1.4: 24H2 shifts listener fields by 8.
    assert_eq!(
        layouts::tcpip(26100, None)
            .unwrap()
            .listener
            .port
            .preferred(),
        0x7A
    );
}

#[test]
fn sources_cite_what_they_use() {
    for t in layouts::tcpip_tables().unwrap() {
        for s in t.structs() {
            for f in s.fields() {
                let src = &f.offset.source;
                assert!(
                    !src.contains("{v3}"),
                    "{}: unexpanded placeholder in {src}",
                    t.id
                );
                // A table beyond volatility3's coverage must not claim a per-build V3 JSON for
                // itself, except when it names a different build's file explicitly.
                if t.v3_json.is_none() {
                    assert!(
                        !src.contains("V3-J:") || src.contains("20348") || src.contains("[I]"),
                        "{} {}.{}: cites {src}",
                        t.id,
                        s.struct_name(),
                        f.name
                    );
                }
            }
        }
    }
}
