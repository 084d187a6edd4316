//! Candidate validation: objects laid out with a NON-preferred variant of the layout (the other
//! source's offsets) are still parsed right, because each field takes the first candidate whose
//! value validates. The synthetic dumps always use the preferred variant, so this is where the
//! other variants are exercised.

use super::Parser;
use crate::diag::Diagnostics;
use crate::kernel::{EprocessOffsets, Processes};
use crate::model::{ObjectKind, Owner, TcpState};
use crate::testing::MemTarget;

const HEAD: u64 = 0xFFFF_F800_0010_0000;
const EPROCESS: u64 = 0xFFFF_A000_0000_1000;
const INETAF: u64 = 0xFFFF_A000_0000_4000;
const TCB: u64 = 0xFFFF_A000_0001_0010;
const ADDRINFO: u64 = 0xFFFF_A000_0000_6000;
const OFFSETS: EprocessOffsets = EprocessOffsets {
    unique_process_id: 0x2E0,
    active_process_links: 0x2E8,
    create_time: 0x308,
    exit_time: 0x690,
    image_file_name: 0x450,
    inherited_from: 0x3E0,
};

/// One process (pid 1536, java.exe) on PsActiveProcessHead.
fn kernel() -> MemTarget {
    let mut t = MemTarget::new();
    t.add_process_list(HEAD, &OFFSETS, &[(1536, "java.exe", EPROCESS)]);
    t
}

/// A 17763 TCB laid out with the second candidate of every field (MemProcFS's link 0x40 and the
/// Win7-style state/ports at 0x68/0x6C/0x6E), remote 120.55.35.7:443, local port 50000.
fn tcb_second_variant(t: &mut MemTarget) -> u64 {
    t.put(TCB - 0xC, b"TcpE");
    t.put_u64(TCB + 0x18, INETAF);
    t.put_u16(INETAF + 0x18, 2);
    t.put_u64(TCB + 0x20, ADDRINFO);
    t.put_u64(ADDRINFO + 0x10, ADDRINFO + 0x100);
    t.put(ADDRINFO + 0x100, &[120, 55, 35, 7]);
    t.put_u32(TCB + 0x68, 4); // ESTABLISHED
    t.put_u16(TCB + 0x6C, 50000u16.swap_bytes());
    t.put_u16(TCB + 0x6E, 443u16.swap_bytes());
    t.put_u64(TCB + 0x2C8, EPROCESS);
    TCB + 0x40
}

#[test]
fn a_tcb_in_the_other_sources_layout_is_parsed_by_validation() {
    let layout = symbols::layouts::tcpip(17763, None).unwrap();
    assert_eq!(
        layout.tcb.hash_link.preferred(),
        0x28,
        "the test lays out the non-preferred variant"
    );
    let mut t = kernel();
    let link = tcb_second_variant(&mut t);
    let mut diag = Diagnostics::new();
    let mut procs = Processes::walk(&t, OFFSETS, &mut diag);
    let mut p = Parser::new(&t, &layout, &mut procs, &mut diag);
    p.from_hash_link(link, "partition-table");
    let e = p.endpoints.first().expect("the TCB is parsed");
    assert_eq!(
        (e.object, e.kind, e.state),
        (TCB, ObjectKind::Tcb, Some(TcpState::Established))
    );
    assert_eq!((e.local_port, e.remote_port), (50000, Some(443)));
    assert_eq!(e.remote_ip, Some("120.55.35.7".parse().unwrap()));
    assert!(
        matches!(&e.owner, Owner::Process { pid: 1536, image, .. } if image == "java.exe"),
        "{:?}",
        e.owner
    );
}

#[test]
fn an_object_without_a_known_pool_tag_is_not_guessed() {
    let layout = symbols::layouts::tcpip(17763, None).unwrap();
    let mut t = kernel();
    let link = tcb_second_variant(&mut t);
    t.put(TCB - 0xC, b"Xxxx");
    let mut diag = Diagnostics::new();
    let mut procs = Processes::walk(&t, OFFSETS, &mut diag);
    let mut p = Parser::new(&t, &layout, &mut procs, &mut diag);
    p.from_hash_link(link, "partition-table");
    assert!(p.endpoints.is_empty());
    drop(p);
    assert_eq!(diag.count("hash-entry-unknown"), 1);
}

#[test]
fn an_object_seen_from_both_roots_is_counted_once() {
    let layout = symbols::layouts::tcpip(17763, None).unwrap();
    let mut t = kernel();
    let link = tcb_second_variant(&mut t);
    let mut diag = Diagnostics::new();
    let mut procs = Processes::walk(&t, OFFSETS, &mut diag);
    let mut p = Parser::new(&t, &layout, &mut procs, &mut diag);
    p.from_hash_link(link, "partition-table");
    p.tcb(TCB, "port-pool");
    assert_eq!(p.endpoints.len(), 1);
}

/// A TIME_WAIT object in volatility3's 9600-style variant (InetAF 0x18, ports 0x30/0x32, remote
/// address through a pointer at 0x40) rather than MemProcFS's preferred one.
#[test]
fn a_time_wait_entry_in_the_other_variant_is_parsed() {
    const TW: u64 = 0xFFFF_A000_0002_0010;
    let layout = symbols::layouts::tcpip(17763, None).unwrap();
    assert_eq!(
        layout.time_wait.inet_af.preferred(),
        0x30,
        "the test lays out the non-preferred variant"
    );
    let mut t = kernel();
    t.put(TW - 0xC, b"TcTW");
    t.put_u64(TW + 0x18, INETAF);
    t.put_u16(INETAF + 0x18, 2);
    t.put_u16(TW + 0x30, 50001u16.swap_bytes());
    t.put_u16(TW + 0x32, 443u16.swap_bytes());
    t.put_u64(TW + 0x40, ADDRINFO + 0x200);
    t.put(ADDRINFO + 0x200, &[120, 55, 35, 9]);
    let mut diag = Diagnostics::new();
    let mut procs = Processes::walk(&t, OFFSETS, &mut diag);
    let mut p = Parser::new(&t, &layout, &mut procs, &mut diag);
    p.from_hash_link(TW, "partition-table");
    let e = p.endpoints.first().expect("the TIME_WAIT entry is parsed");
    assert_eq!(
        (e.kind, e.state),
        (ObjectKind::TimeWait, Some(TcpState::TimeWait))
    );
    assert_eq!((e.local_port, e.remote_port), (50001, Some(443)));
    assert_eq!(e.remote_ip, Some("120.55.35.9".parse().unwrap()));
    assert_eq!(e.owner, Owner::Unattributed);
}
