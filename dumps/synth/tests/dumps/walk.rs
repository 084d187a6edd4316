//! An independent minimal walker: plain reads through the `dumps` reader, offsets from the
//! fixture manifests and the preferred candidates of `symbols::layouts`, the walk of
//! MEMORY-MODEL.md. It must find exactly the processes, modules and endpoints of the truth.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use dumps::{Dump, Gva, Reader};
use symbols::layouts;

use super::{cases, manifest, nt_field};

struct W<'a> {
    r: Reader<'a>,
}

impl W<'_> {
    fn u64(&self, va: u64) -> u64 {
        self.r
            .read_u64(Gva(va))
            .unwrap_or_else(|e| panic!("read u64 at {va:#x}: {e}"))
    }
    fn u32(&self, va: u64) -> u32 {
        self.r
            .read_u32(Gva(va))
            .unwrap_or_else(|e| panic!("read u32 at {va:#x}: {e}"))
    }
    fn bytes(&self, va: u64, n: usize) -> Vec<u8> {
        let mut b = vec![0; n];
        self.r
            .read_exact(Gva(va), &mut b)
            .unwrap_or_else(|e| panic!("read {n} at {va:#x}: {e}"));
        b
    }
    fn u16(&self, va: u64) -> u16 {
        let b = self.bytes(va, 2);
        u16::from_le_bytes([b[0], b[1]])
    }
    fn be16(&self, va: u64) -> u16 {
        let b = self.bytes(va, 2);
        u16::from_be_bytes([b[0], b[1]])
    }
    fn tag(&self, obj: u64) -> [u8; 4] {
        self.bytes(obj - 0xC, 4).try_into().unwrap()
    }
    /// A LIST_ENTRY list from `head`, bounded, with cycle detection.
    fn list(&self, head: u64, bound: usize) -> Vec<u64> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        let mut cur = self.u64(head);
        while cur != head {
            assert!(seen.insert(cur), "cycle in the list at {head:#x}");
            assert!(out.len() <= bound, "list at {head:#x} longer than {bound}");
            assert_eq!(
                self.u64(cur + 8),
                out.last().copied().unwrap_or(head),
                "Blink of {cur:#x} is wrong"
            );
            out.push(cur);
            cur = self.u64(cur);
        }
        out
    }
    fn ip(&self, va: u64, v6: bool) -> IpAddr {
        let b = self.bytes(va, if v6 { 16 } else { 4 });
        if v6 {
            IpAddr::from(<[u8; 16]>::try_from(b).unwrap())
        } else {
            IpAddr::from(<[u8; 4]>::try_from(b).unwrap())
        }
    }
    fn path(&self, p: &layouts::AddrPath, start: u64, v6: bool) -> IpAddr {
        let mut at = start;
        for d in &p.derefs {
            at = self.u64(at + u64::from(*d));
        }
        self.ip(at + u64::from(p.ip_at), v6)
    }
}

/// (proto, state, local, remote, owner pid, va) as the walker sees an endpoint.
type Row = (
    String,
    Option<String>,
    String,
    Option<String>,
    Option<u32>,
    u64,
);

fn state_name(code: u32, has_remote: bool) -> String {
    let n = match code {
        0 if !has_remote => "BOUND",
        0 => "CLOSED",
        1 => "LISTEN",
        2 => "SYN_SENT",
        3 => "SYN_RCVD",
        4 => "ESTABLISHED",
        5 => "FIN_WAIT1",
        6 => "FIN_WAIT2",
        7 => "CLOSE_WAIT",
        8 => "CLOSING",
        9 => "LAST_ACK",
        12 => "TIME_WAIT",
        13 => "DELETE_TCB",
        _ => panic!("state {code} outside the enum"),
    };
    n.into()
}

fn sock(ip: IpAddr, port: u16) -> String {
    std::net::SocketAddr::new(ip, port).to_string()
}

#[test]
fn independent_walk_finds_exactly_the_truth() {
    for c in cases() {
        let t = &c.built.truth_data;
        let dump = Dump::open(&c.built.dump).unwrap();
        let w = W {
            r: Reader::new(&dump),
        };
        let h = dump.header();
        let m = manifest(t.build);

        // Processes on PsActiveProcessHead, offsets from the manifest.
        let links = nt_field(&m, "_EPROCESS", "ActiveProcessLinks");
        let mut procs = BTreeMap::new();
        for l in w.list(h.ps_active_process_head, 4096) {
            let ep = l - links;
            assert_eq!(
                w.bytes(ep + nt_field(&m, "_EPROCESS", "Pcb.Header.Type"), 1)[0],
                3
            );
            assert_eq!(
                &w.tag(ep - 0x30),
                b"Proc",
                "EPROCESS {ep:#x} has no Proc pool header"
            );
            let pid = w.u64(ep + nt_field(&m, "_EPROCESS", "UniqueProcessId")) as u32;
            let name = w.bytes(ep + nt_field(&m, "_EPROCESS", "ImageFileName"), 15);
            let name =
                String::from_utf8_lossy(&name[..name.iter().position(|&b| b == 0).unwrap_or(15)])
                    .into_owned();
            let ct = w.u64(ep + nt_field(&m, "_EPROCESS", "CreateTime"));
            assert_eq!(
                w.u64(ep + nt_field(&m, "_EPROCESS", "Pcb.DirectoryTableBase")),
                dump.dtb().0
            );
            let xt = w.u64(ep + nt_field(&m, "_EPROCESS", "ExitTime"));
            procs.insert(ep, (pid, name, ct, (xt != 0).then_some(xt)));
        }
        let want: BTreeMap<u64, (u32, String, u64, Option<u64>)> = t
            .processes
            .iter()
            .map(|p| {
                (
                    p.eprocess,
                    (p.pid, p.image.clone(), p.create_time, p.exit_time),
                )
            })
            .collect();
        assert_eq!(procs, want, "{}: processes differ", t.scenario);
        let pid_of = |ep: u64| procs.get(&ep).map(|p| p.0);

        // Modules on PsLoadedModuleList.
        let k = |f: &str| nt_field(&m, "_KLDR_DATA_TABLE_ENTRY", f);
        let mut mods = BTreeMap::new();
        for e in w.list(h.ps_loaded_module_list, 512) {
            let len = w.u16(e + k("BaseDllName")) as usize;
            let name = w.bytes(w.u64(e + k("BaseDllName") + 8), len);
            let name = String::from_utf16(
                &name
                    .chunks(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect::<Vec<_>>(),
            )
            .unwrap();
            mods.insert(name, (w.u64(e + k("DllBase")), w.u32(e + k("SizeOfImage"))));
        }
        for tm in &t.modules {
            assert_eq!(
                mods.get(&tm.name),
                Some(&(tm.base, tm.size)),
                "{}: module {}",
                t.scenario,
                tm.name
            );
            assert_eq!(w.bytes(tm.base, 2), b"MZ");
        }

        // KDBG and KUSER_SHARED_DATA.
        let kd = h.kd_debugger_data_block;
        assert_eq!(&w.bytes(kd + 0x10, 4), b"KDBG");
        assert_eq!(w.u64(kd + 0x48), h.ps_loaded_module_list);
        assert_eq!(w.u64(kd + 0x50), h.ps_active_process_head);
        assert_eq!(w.u64(kd + 0x18), mods["ntoskrnl.exe"].0);
        let ku = 0xFFFF_F780_0000_0000u64;
        assert_eq!(w.u64(ku + 0x8), t.uptime_secs * 10_000_000);
        assert_eq!(w.u64(ku + 0x14), t.system_time);
        assert_eq!(w.u64(ku + 0x320), t.uptime_secs * 10_000_000 / 156_250);
        if t.build >= 10240 {
            assert_eq!(w.u32(ku + 0x260), t.build);
        }

        // nt!PoolBigPageTable tags the big blocks (facts 1.8): entries of 0x18 bytes, 0x20 from 20348.
        let nt_pub = |n: &str| {
            mods["ntoskrnl.exe"].0 + m["modules"]["ntoskrnl"]["publics"][n].as_u64().unwrap()
        };
        let (table, n) = (
            w.u64(nt_pub("PoolBigPageTable")),
            w.u64(nt_pub("PoolBigPageTableSize")),
        );
        let esize = if t.build >= 20348 { 0x20 } else { 0x18 };
        let raw = w.bytes(table, (n * esize) as usize);
        let big: BTreeMap<u64, [u8; 4]> = raw
            .chunks(esize as usize)
            .map(|e| {
                (
                    u64::from_le_bytes(e[..8].try_into().unwrap()),
                    e[8..12].try_into().unwrap(),
                )
            })
            .filter(|(va, _)| va & 1 == 0)
            .collect();
        assert_eq!(
            big.values().filter(|t| *t == b"InPP").count(),
            2,
            "{}: TCP and UDP InPP in the big-page table",
            t.scenario
        );

        let rows = tcpip_rows(&w, &m, t.build, mods["tcpip.sys"].0, &pid_of);
        let mut want: Vec<Row> = t
            .endpoints
            .iter()
            .map(|e| {
                let ip: IpAddr = e.local_ip.parse().unwrap();
                let remote = e
                    .remote_ip
                    .as_ref()
                    .map(|r| sock(r.parse().unwrap(), e.remote_port.unwrap()));
                (
                    e.proto.clone(),
                    e.state.clone(),
                    sock(ip, e.local_port),
                    remote,
                    e.owner_pid,
                    e.va,
                )
            })
            .collect();
        want.sort();
        let mut got = rows;
        got.sort();
        assert_eq!(got.len(), want.len(), "{}: endpoint count", t.scenario);
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w, "{}: first differing endpoint", t.scenario);
        }

        // AFD endpoints: one per open socket, owners as in the truth.
        let afd = layouts::afd(t.build).unwrap();
        let head = mods["afd.sys"].0
            + m["modules"]["afd"]["publics"]["AfdEndpointListHead"]
                .as_u64()
                .unwrap();
        let mut afd_pids: BTreeMap<u32, usize> = BTreeMap::new();
        for l in w.list(head, 200_000) {
            let ep = l - u64::from(afd.endpoint.list_link.preferred());
            assert_eq!(
                w.u16(ep) & afd.endpoint.signature_mask,
                afd.endpoint.signature_mask
            );
            *afd_pids
                .entry(pid_of(w.u64(ep + u64::from(afd.endpoint.owner.preferred()))).unwrap())
                .or_default() += 1;
        }
        let mut want_afd: BTreeMap<u32, usize> = BTreeMap::new();
        for e in t.endpoints.iter().filter(|e| e.afd_va.is_some()) {
            *want_afd.entry(e.afd_pid.unwrap()).or_default() += 1;
        }
        assert_eq!(afd_pids, want_afd, "{}: AFD endpoints per pid", t.scenario);
    }
}

/// Everything tcpip holds: partition hash tables (TCBs, TIME_WAIT), then the port pools
/// (listeners, UDP), checking pool tags at every hop and the bitmap against the objects.
fn tcpip_rows(
    w: &W<'_>,
    m: &serde_json::Value,
    build: u32,
    base: u64,
    pid_of: &dyn Fn(u64) -> Option<u32>,
) -> Vec<Row> {
    let v: Vec<u16> = m["modules"]["tcpip"]["file_version"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u16)
        .collect();
    let l = layouts::tcpip(build, Some([v[0], v[1], v[2], v[3]])).unwrap();
    let publics = &m["modules"]["tcpip"]["publics"];
    let rva = |n: &str| {
        publics[n]
            .as_u64()
            .unwrap_or_else(|| panic!("tcpip has no {n}"))
    };
    let af_of = |inetaf: u64| {
        assert_eq!(&w.tag(inetaf), b"InNl");
        match w.u16(inetaf + u64::from(l.inet_af.address_family.preferred())) {
            2 => false,
            0x17 => true,
            x => panic!("address family {x:#x}"),
        }
    };
    let local_tcb = |local: u64, v6: bool| {
        let pd = w.u64(local + u64::from(l.local_address.pdata.preferred()));
        w.ip(w.u64(pd), v6)
    };
    let off = |o: &layouts::Offset| u64::from(o.preferred());
    let mut rows = Vec::new();
    let mut tcp_ports = BTreeSet::new();

    let table = w.u64(base + rva("PartitionTable"));
    let count = w.u32(base + rva("PartitionCount"));
    assert!((1..=64).contains(&count));
    for p in 0..u64::from(count) {
        let rec = table + p * off(&l.partition.stride);
        assert_eq!(&w.tag(w.u64(rec)), b"TcHT");
        for k in 0..3 {
            let ht = w.u64(rec + 8 * k);
            let size = w.u32(ht + 8) as u64;
            let entries = w.u32(ht + 0x14) as usize;
            let dir = w.u64(ht + 0x20);
            assert_eq!(&w.tag(dir), b"HTab");
            let mut found = 0;
            for b in 0..size {
                let head = if size > 128 {
                    let a = b + 128;
                    let msb = 63 - a.leading_zeros() as u64;
                    w.u64(dir + (msb - 7) * 8) + (a ^ (1 << msb)) * 16
                } else {
                    dir + b * 16
                };
                for link in w.list(head, entries + 16) {
                    found += 1;
                    let tcb = link - off(&l.tcb.hash_link);
                    if l.tcb.tags.accepts(symbols::layouts::PoolTag(w.tag(tcb))) {
                        let v6 = af_of(w.u64(tcb + off(&l.tcb.inet_af)));
                        let path = w.u64(tcb + off(&l.tcb.addr_info));
                        let local = local_tcb(w.u64(path + off(&l.addr_info.local)), v6);
                        let rptr = w.u64(path + off(&l.addr_info.remote));
                        let remote = (rptr != 0)
                            .then(|| sock(w.ip(rptr, v6), w.be16(tcb + off(&l.tcb.remote_port))));
                        let lport = w.be16(tcb + off(&l.tcb.local_port));
                        let state = state_name(w.u32(tcb + off(&l.tcb.state)), remote.is_some());
                        assert_eq!(k == 0, state.starts_with("SYN"), "table {k} holds {state}");
                        let owner = pid_of(w.u64(tcb + off(&l.tcb.owner)));
                        tcp_ports.insert(lport);
                        rows.push((
                            "TCP".into(),
                            Some(state),
                            sock(local, lport),
                            remote,
                            owner,
                            tcb,
                        ));
                        continue;
                    }
                    let tw = link - off(&l.time_wait.link);
                    assert_eq!(
                        &w.tag(tw),
                        b"TcTW",
                        "object at link {link:#x} has neither a TCB nor a TcTW tag"
                    );
                    assert_eq!(k, 2);
                    let v6 = af_of(w.u64(tw + off(&l.time_wait.inet_af)));
                    let la = w.u64(tw + off(&l.time_wait.local_addr));
                    let ips: BTreeSet<IpAddr> = l
                        .time_wait
                        .local_addr_paths
                        .iter()
                        .map(|p| w.path(p, la, v6))
                        .collect();
                    assert_eq!(
                        ips.len(),
                        1,
                        "TIME_WAIT local-address paths disagree: {ips:?}"
                    );
                    let r_at = tw + off(&l.time_wait.remote_addr);
                    let rip = match l.time_wait.remote_addr_storage[0] {
                        layouts::AddrStorage::Pointer => w.ip(w.u64(r_at), v6),
                        _ => w.ip(r_at, v6),
                    };
                    let lport = w.be16(tw + off(&l.time_wait.local_port));
                    let t = l
                        .time_wait
                        .time
                        .as_ref()
                        .map(|o| w.u64(tw + off(o)))
                        .unwrap();
                    assert_eq!(
                        t >> 56,
                        1,
                        "TIME_WAIT time {t:#x} is not a plausible FILETIME"
                    );
                    tcp_ports.insert(lport);
                    let remote = sock(rip, w.be16(tw + off(&l.time_wait.remote_port)));
                    rows.push((
                        "TCP".into(),
                        Some("TIME_WAIT".into()),
                        sock(*ips.first().unwrap(), lport),
                        Some(remote),
                        None,
                        tw,
                    ));
                }
            }
            assert_eq!(found, entries, "NumEntries of the hash table at {ht:#x}");
        }
    }

    for (proto, global, set, cotag) in [
        ("TCP", "TcpPortPool", "TcpCompartmentSet", b"TcCo"),
        ("UDP", "UdpPortPool", "UdpCompartmentSet", b"UdCo"),
    ] {
        let pp = if publics.get(global).is_some() {
            w.u64(base + rva(global))
        } else {
            let cs = w.u64(base + rva(set));
            assert_eq!(&w.tag(cs), b"InCS");
            let co = w.u64(cs + off(&l.port_pool.compartment_set_inet));
            assert_eq!(&w.tag(co), b"InCo");
            let pc = w.u64(co + off(&l.port_pool.compartment_protocol));
            assert_eq!(&w.tag(pc), cotag);
            w.u64(pc + off(&l.port_pool.protocol_port_pool))
        };
        assert_eq!(pp % 0x1000, 0, "InPP is page-aligned big pool");
        let bm = pp + off(&l.port_pool.port_bitmap);
        assert_eq!(w.u32(bm), 65536);
        let bits = w.bytes(w.u64(bm + 8), 8192);
        let mut set_ports = BTreeSet::new();
        for port in 0..=65535u16 {
            if bits[usize::from(port / 8)] & (1 << (port % 8)) == 0 {
                continue;
            }
            set_ports.insert(port);
            let inpa = w.u64(pp + off(&l.port_pool.port_assignments) + u64::from(port >> 8) * 8);
            assert_eq!(&w.tag(inpa), b"InPA");
            let arr = w.u64(inpa + off(&l.port_pool.inpa_entries));
            let mut e = w.u64(
                arr + u64::from(port & 0xFF) * off(&l.port_pool.entry_stride)
                    + off(&l.port_pool.entry_ptr),
            ) & !7;
            let mut guard = 0;
            while e != 0 {
                guard += 1;
                assert!(guard < 10_000, "port chain of {port} does not end");
                let (link, obj) = if proto == "TCP" {
                    (off(&l.listener.link), e - off(&l.listener.link))
                } else {
                    (off(&l.udp.link), e - off(&l.udp.link))
                };
                let _ = link;
                if proto == "TCP" {
                    assert_eq!(&w.tag(obj), b"TcpL");
                    let v6 = af_of(w.u64(obj + off(&l.listener.inet_af)));
                    let la = w.u64(obj + off(&l.listener.local_addr));
                    let ip = if la == 0 {
                        wildcard(v6)
                    } else {
                        local_tcb(la, v6)
                    };
                    assert_eq!(w.be16(obj + off(&l.listener.port)), port);
                    rows.push((
                        "TCP".into(),
                        Some("LISTEN".into()),
                        sock(ip, port),
                        None,
                        pid_of(w.u64(obj + off(&l.listener.owner))),
                        obj,
                    ));
                } else {
                    assert_eq!(&w.tag(obj), b"UdpA");
                    let v6 = af_of(w.u64(obj + off(&l.udp.inet_af)));
                    let la = w.u64(obj + off(&l.udp.local_addr));
                    let ip = if la == 0 {
                        wildcard(v6)
                    } else {
                        let ips: BTreeSet<IpAddr> = l
                            .udp
                            .local_addr_paths
                            .iter()
                            .map(|p| w.path(p, la, v6))
                            .collect();
                        assert_eq!(ips.len(), 1, "UDP local-address paths disagree: {ips:?}");
                        *ips.first().unwrap()
                    };
                    assert_eq!(w.be16(obj + off(&l.udp.port)), port);
                    rows.push((
                        "UDP".into(),
                        None,
                        sock(ip, port),
                        None,
                        pid_of(w.u64(obj + off(&l.udp.owner))),
                        obj,
                    ));
                }
                e = w.u64(e) & !7;
            }
        }
        if proto == "TCP" {
            let listen: BTreeSet<u16> = rows
                .iter()
                .filter(|r| r.1.as_deref() == Some("LISTEN"))
                .map(|r| r.2.rsplit(':').next().unwrap().parse().unwrap())
                .collect();
            let held: BTreeSet<u16> = tcp_ports.union(&listen).copied().collect();
            assert_eq!(
                set_ports, held,
                "TCP bitmap <=> ports held by TCBs, TIME_WAIT and listeners"
            );
        }
    }
    rows
}

fn wildcard(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::from([0u8; 16])
    } else {
        IpAddr::from([0u8; 4])
    }
}
