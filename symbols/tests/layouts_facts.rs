//! Second cross-check: numbers transcribed by hand from the facts documents for everything
//! volatility3's JSONs do not cover (MemProcFS rules, afd, ntoskrnl). Each block cites the
//! table it was copied from: "facts" = /work/shared/reference/tcpip-afd-facts.md, "DFF" =
//! dump-format-facts.md. The data files were written separately; this catches typos there.

use symbols::layouts::{self, AddrStorage, Offset, PortPoolRoot};

const ALL: &[u32] = &[
    7601, 9200, 9600, 10240, 10586, 14393, 15063, 16299, 17134, 17763, 18362, 18363, 19041, 20348,
    22000, 22621, 26100,
];

#[track_caller]
fn has(o: &Offset, v: u32, what: &str) {
    assert!(
        o.allows(v),
        "{what}: {v:#x} not among {:x?} ({})",
        o.candidates,
        o.source
    );
}

#[track_caller]
fn pref(o: &Offset, v: u32, what: &str) {
    assert_eq!(
        o.preferred(),
        v,
        "{what}: preferred {:#x}, facts say {v:#x} ({})",
        o.preferred(),
        o.source
    );
}

#[test]
fn eprocess_matches_facts_1_9() {
    // facts 1.9: build -> (UniqueProcessId, ActiveProcessLinks, CreateTime, ExitTime,
    // ObjectTable, ImageFileName, InheritedFromUniqueProcessId, ExitStatus).
    let rows: &[(u32, [u32; 8])] = &[
        (
            7601,
            [0x180, 0x188, 0x168, 0x170, 0x200, 0x2E0, 0x290, 0x444],
        ),
        (
            9600,
            [0x2E0, 0x2E8, 0x2D0, 0x640, 0x408, 0x438, 0x3D0, 0x5D4],
        ),
        (
            14393,
            [0x2E8, 0x2F0, 0x308, 0x688, 0x418, 0x450, 0x3E0, 0x61C],
        ),
        (
            17763,
            [0x2E0, 0x2E8, 0x308, 0x690, 0x418, 0x450, 0x3E0, 0x624],
        ),
        (
            19041,
            [0x440, 0x448, 0x468, 0x840, 0x570, 0x5A8, 0x540, 0x7D4],
        ),
        (
            19045,
            [0x440, 0x448, 0x468, 0x840, 0x570, 0x5A8, 0x540, 0x7D4],
        ),
        (
            20348,
            [0x440, 0x448, 0x468, 0x840, 0x570, 0x5A8, 0x540, 0x7D4],
        ),
        (
            22000,
            [0x440, 0x448, 0x468, 0x840, 0x570, 0x5A8, 0x540, 0x7D4],
        ),
        (
            22621,
            [0x440, 0x448, 0x468, 0x840, 0x570, 0x5A8, 0x540, 0x7D4],
        ),
        (
            26100,
            [0x1D0, 0x1D8, 0x1F8, 0x5C0, 0x300, 0x338, 0x2D0, 0x554],
        ),
    ];
    for &(b, v) in rows {
        let e = &layouts::nt(b).unwrap().eprocess;
        let w = format!("EPROCESS {b}");
        pref(&e.unique_process_id, v[0], &w);
        pref(&e.active_process_links, v[1], &w);
        pref(&e.create_time, v[2], &w);
        pref(&e.exit_time, v[3], &w);
        pref(&e.object_table, v[4], &w);
        pref(&e.image_file_name, v[5], &w);
        pref(&e.inherited_from_unique_process_id, v[6], &w);
        pref(&e.exit_status, v[7], &w);
        pref(&e.directory_table_base, 0x28, &w);
    }
}

#[test]
fn kuser_and_kdbg_match_facts_1_10_and_dff_1_7() {
    for &b in ALL {
        let n = layouts::nt(b).unwrap();
        let k = &n.kuser;
        assert_eq!(k.address, 0xFFFF_F780_0000_0000);
        pref(&k.tick_count_multiplier, 0x4, "KUSER");
        pref(&k.interrupt_time, 0x8, "KUSER");
        pref(&k.system_time, 0x14, "KUSER");
        pref(&k.time_zone_bias, 0x20, "KUSER");
        pref(&k.nt_major_version, 0x26C, "KUSER");
        pref(&k.nt_minor_version, 0x270, "KUSER");
        pref(&k.tick_count_quad, 0x320, "KUSER");
        pref(&k.interrupt_time_bias, 0x3B0, "KUSER");
        // facts 1.10: NtBuildNumber at 0x260 on Win10+, absent in the 7601 layout.
        match &k.nt_build_number {
            Some(o) => {
                assert!(b >= 10240, "{b} has no NtBuildNumber");
                pref(o, 0x260, "KUSER.NtBuildNumber");
            }
            None => assert!(b < 10240, "{b} lacks NtBuildNumber"),
        }
        let d = &n.kdbg;
        pref(&d.owner_tag, 0x10, "KDBG");
        pref(&d.header_size, 0x14, "KDBG");
        pref(&d.kern_base, 0x18, "KDBG");
        pref(&d.ps_loaded_module_list, 0x48, "KDBG");
        pref(&d.ps_active_process_head, 0x50, "KDBG");
        pref(&d.mm_pfn_database, 0xC0, "KDBG");
        pref(&d.ki_processor_block, 0x218, "KDBG");
        // facts 2.1 / MEMORY-MODEL: pool tag at object-0xC; big-pool entries 0x20 from 20348.
        assert_eq!(n.pool.header_size - n.pool.pool_tag.preferred(), 0xC);
        pref(
            &n.pool.big_page_entry_size,
            if b >= 20348 { 0x20 } else { 0x18 },
            "big pool",
        );
        pref(&n.kldr.dll_base, 0x30, "KLDR");
        pref(&n.kldr.size_of_image, 0x40, "KLDR");
        pref(&n.kldr.base_dll_name, 0x58, "KLDR");
    }
}

#[test]
fn afd_matches_facts_2_6() {
    // facts 2.6: 0x110 (CM, Win7-era), 0x120 (GH: Server 2019 and 2022), 0x130 (GH: Win11).
    for (b, link) in [
        (7601, 0x110),
        (17763, 0x120),
        (20348, 0x120),
        (22000, 0x130),
        (22621, 0x130),
    ] {
        pref(
            &layouts::afd(b).unwrap().endpoint.list_link,
            link,
            &format!("AFD link {b}"),
        );
    }
    for &b in ALL {
        let e = &layouts::afd(b).unwrap().endpoint;
        for link in [0x110, 0x120, 0x130] {
            has(&e.list_link, link, &format!("AFD link {b}"));
        }
        pref(&e.owner, 0x28, "AFD owner (GH v1.3)");
        pref(&e.signature, 0, "AFD signature");
        assert_eq!(e.signature_mask, 0xAFD0);
        let back: Vec<u32> = e.signature_search_back.offsets().collect();
        assert!(
            back.contains(&0x100) && back.contains(&0x180),
            "GH searches 0x100-0x180 back"
        );
        let own: Vec<u32> = e.owner_scan.offsets().collect();
        assert!(
            own.contains(&0x20) && own.contains(&0x40),
            "GH v1.4 scans +0x20..+0x40"
        );
    }
}

#[test]
fn tcb_matches_memprocfs_rules_facts_1_3() {
    for &b in ALL {
        let t = layouts::tcpip(b, None).unwrap();
        let w = format!("TCB {b}");
        // Object start = link - 0x40 (TcpE/TTcb) or link - 0x30 (TTcb); V3 0x28.
        for l in [0x28, 0x30, 0x40] {
            has(&t.tcb.hash_link, l, &w);
        }
        has(&t.tcb.inet_af, 0x10, &w);
        has(&t.tcb.inet_af, 0x18, &w);
        has(&t.tcb.state, 0x6C, &w);
        has(&t.tcb.state, 0x68, &w);
        if b >= 22000 {
            pref(&t.tcb.state, 0x70, &w);
            assert_eq!(t.tcb.tags.preferred().to_string(), "TTcb");
        }
        let scan: Vec<u32> = t
            .tcb
            .owner_scan
            .as_ref()
            .expect("MPF owner scan")
            .offsets()
            .collect();
        assert_eq!((scan[0], *scan.last().unwrap()), (0x80, 0x378), "{w}");
        // Create time = EPROCESS field + 0x10 is always a candidate.
        has(
            t.tcb.create_time.as_ref().expect("create time"),
            t.tcb.owner.preferred() + 0x10,
            &w,
        );
        // INETAF.AddressFamily: 0x14 before 9200, else 0x18.
        pref(
            &t.inet_af.address_family,
            if b < 9200 { 0x14 } else { 0x18 },
            &w,
        );
        assert_eq!(t.inet_af.tags.preferred().to_string(), "InNl");
    }
}

#[test]
fn listener_udp_time_wait_match_memprocfs_facts_1_4_to_1_7() {
    for &b in ALL {
        let t = layouts::tcpip(b, None).unwrap();
        let (l, u, tw) = (&t.listener, &t.udp, &t.time_wait);
        let w = format!("{b}");
        // facts 1.4 (MPF TcpL): Vista-8.1 / Win10-23H2 / 24H2.
        let tcpl = match b {
            ..10240 => [0x60, 0x28, 0x58, 0x6A, 0x70],
            10240..26100 => [0x28, 0x30, 0x60, 0x72, 0x78],
            _ => [0x30, 0x38, 0x68, 0x7A, 0x80],
        };
        pref(&l.inet_af, tcpl[0], &w);
        pref(&l.owner, tcpl[1], &w);
        pref(&l.local_addr, tcpl[2], &w);
        pref(&l.port, tcpl[3], &w);
        pref(&l.link, tcpl[4], &w);
        // facts 1.5 (MPF UdpA): (LocalAddr, Port, link) per era, all as candidates.
        let udpa = match b {
            ..10240 => [0x60, 0x80, 0x88],
            10240..19041 => [0x80, 0x78, 0x70],
            19041..26100 => [0xA8, 0xA0, 0x70],
            _ => [0xB0, 0xA8, 0x78],
        };
        has(&u.local_addr, udpa[0], &w);
        has(&u.port, udpa[1], &w);
        has(&u.link, udpa[2], &w);
        pref(&u.owner, if b >= 26100 { 0x30 } else { 0x28 }, &w);
        if b >= 19041 {
            let rp = if b >= 26100 {
                (0x118, 0x128)
            } else {
                (0x110, 0x120)
            };
            pref(u.remote_port.as_ref().unwrap(), rp.0, &w);
            pref(u.remote_addr.as_ref().unwrap(), rp.1, &w);
        }
        if b >= 22000 {
            let ippa = if b >= 26100 { 0xD8 } else { 0xC0 };
            pref(u.remote_ip_in_ippa.as_ref().unwrap(), ippa, &w);
        }
        // facts 1.7 (MPF TcTW, unversioned): every build carries MPF's offsets.
        has(&tw.link, 0, &w);
        has(&tw.inet_af, 0x30, &w);
        has(&tw.local_port, 0x4A, &w);
        has(&tw.remote_port, 0x4C, &w);
        has(&tw.local_addr, 0x50, &w);
        has(&tw.remote_addr, 0x58, &w);
        assert!(
            tw.remote_addr_storage.contains(&AddrStorage::Inline),
            "{w}: MPF reads inline"
        );
        if b >= 10240 {
            assert_eq!(
                tw.remote_addr_storage[0],
                AddrStorage::Inline,
                "{w}: only MPF covers it"
            );
        }
        pref(tw.time.as_ref().unwrap(), 0x98, &w);
        assert_eq!(tw.tags.preferred().to_string(), "TcTW");
    }
}

#[test]
fn partitions_and_port_pools_match_facts_1_2_and_1_6() {
    for &b in ALL {
        let t = layouts::tcpip(b, None).unwrap();
        let (p, pp) = (&t.partition, &t.port_pool);
        let w = format!("{b}");
        // facts 1.2: V3 0x80 before 19041, 0xC0 from 19041; MPF 0xC0 for 1903+.
        pref(&p.stride, if b >= 19041 { 0xC0 } else { 0x80 }, &w);
        if b >= 18362 {
            has(&p.stride, 0xC0, &w);
        }
        assert_eq!(p.common_tables_before_array, b >= 20348, "{w}");
        assert_eq!((p.max_count, p.min_table_span), (64, 0x40));
        pref(&t.hash_table.table_size, 0x8, &w);
        pref(&t.hash_table.directory, 0x20, &w);
        // facts 1.6: entry stride / pointer offset per era.
        let entry = match b {
            ..9600 => (0x10, 0x8),
            9600..19041 => (0x18, 0x8),
            _ => (0x20, 0x10),
        };
        pref(&pp.entry_stride, entry.0, &w);
        pref(&pp.entry_ptr, entry.1, &w);
        // MPF tries InPA+0x18 and +0x20 on every build.
        has(&pp.inpa_entries, 0x18, &w);
        has(&pp.inpa_entries, 0x20, &w);
        // facts 2.3: globals up to 10586, compartment chain afterwards.
        let root = if b <= 10586 {
            PortPoolRoot::Globals
        } else {
            PortPoolRoot::CompartmentChain
        };
        assert_eq!(pp.roots.kinds[0], root, "{w}");
        pref(&pp.compartment_set_inet, 0x148, &w);
        pref(&pp.compartment_protocol, 0x20, &w);
        pref(&pp.protocol_port_pool, 0, &w);
        // facts 1.8: pool tags at every hop.
        let tags = [
            (&pp.pool_tags, "InPP"),
            (&pp.assignment_tags, "InPA"),
            (&pp.compartment_set_tags, "InCS"),
            (&pp.compartment_tags, "InCo"),
            (&pp.tcp_compartment_tags, "TcCo"),
            (&pp.udp_compartment_tags, "UdCo"),
            (&p.header_block_tags, "TcHT"),
            (&p.directory_tags, "HTab"),
            (&t.listener.tags, "TcpL"),
            (&t.udp.tags, "UdpA"),
        ];
        for (tag, want) in tags {
            assert_eq!(tag.preferred().to_string(), want, "{w}");
        }
    }
    // facts 1.6 V3 table: the 9600 revision split of the port pool.
    let old = layouts::tcpip(9600, Some([6, 3, 9600, 16384])).unwrap();
    let new = layouts::tcpip(9600, Some([6, 3, 9600, 19935])).unwrap();
    pref(&old.port_pool.port_assignments, 0xB0, "9600");
    pref(&new.port_pool.port_assignments, 0xD8, "9600 r19935");
}
