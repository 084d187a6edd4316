//! tcpip.sys state: partitions and their hash tables, TCBs, TIME_WAIT entries, listeners, UDP
//! endpoints and the port pools, laid out per MEMORY-MODEL.md "tcpip".

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

use crate::gen::{Ep, Kind};
use crate::hash::{self, Entry};
use crate::layout::Layout;
use crate::scenario::{HashSizes, State};
use crate::space::{Obj, Pages, Pool, Space, PAGE};
use crate::Error;

/// Where one endpoint landed.
#[derive(Debug, Clone, Copy)]
pub struct Placed {
    pub va: u64,
    pub tag: [u8; 4],
}

/// Inputs the tcpip writer needs from the rest of the machine.
pub struct Ctx<'a> {
    pub l: &'a Layout,
    /// pid -> EPROCESS VA.
    pub eprocess: &'a BTreeMap<u32, u64>,
    /// FILETIME of the dump.
    pub now: u64,
    pub partitions: u32,
    pub hash: &'a HashSizes,
}

/// VAs of the globals to patch inside the tcpip image.
#[derive(Debug, Clone, Copy)]
pub struct Globals {
    pub partition_table: u64,
    pub partition_count: u64,
    /// TcpPortPool or TcpCompartmentSet (per layout), same for UDP.
    pub tcp_root: u64,
    pub udp_root: u64,
}

const AF_INET: u16 = 2;
const AF_INET6: u16 = 0x17;

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// FNV-1a over the 4-tuple: spreads entries over partitions and buckets.
fn tuple_hash(local: &SocketAddr, remote: Option<&SocketAddr>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: &[u8]| {
        for &x in b {
            h = (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3);
        }
    };
    eat(&ip_bytes(local.ip()));
    eat(&local.port().to_be_bytes());
    if let Some(r) = remote {
        eat(&ip_bytes(r.ip()));
        eat(&r.port().to_be_bytes());
    }
    h
}

struct Writer<'a, 'b> {
    sp: &'b mut Pages,
    pool: &'b mut Pool,
    c: &'b Ctx<'a>,
    inetaf: [u64; 2],
    locals: HashMap<IpAddr, u64>,
}

impl Writer<'_, '_> {
    fn inetaf(&self, ip: IpAddr) -> u64 {
        self.inetaf[usize::from(ip.is_ipv6())]
    }

    /// A LOCAL_ADDRESS per local IP, readable along every dereference path the peers use:
    /// `*(*(p+0x10))` (V3/RK TCBs), `*(p+0x10)+0x28` (MPF TcTW), `*(p+0)` (V3 Win10 UdpA),
    /// `*(*(p+0x18))+0x18` (MPF UdpA) (tcpip-afd-facts.md 1.3, 1.5, 1.7).
    fn local(&mut self, ip: IpAddr) -> Result<u64, Error> {
        // A null LocalAddr means a wildcard listener/UDP endpoint (facts 1.4).
        if ip.is_unspecified() {
            return Ok(0);
        }
        self.local_block(ip)
    }

    fn local_block(&mut self, ip: IpAddr) -> Result<u64, Error> {
        if let Some(&va) = self.locals.get(&ip) {
            return Ok(va);
        }
        let va = self.pool.alloc(self.sp, b"IPla", 0x70)?;
        let b = ip_bytes(ip);
        let mut o = Obj::new(0x70);
        o.u64(0x00, va + 0x30)
            .u64(0x10, va + 0x20)
            .u64(0x18, va + 0x60)
            .u64(0x20, va + 0x30)
            .bytes(0x30, &b)
            .bytes(0x48, &b)
            .u64(0x60, va + 0x18);
        o.store(self.sp, va)?;
        self.locals.insert(ip, va);
        Ok(va)
    }

    fn owner(&self, pid: Option<u32>) -> u64 {
        pid.and_then(|p| self.c.eprocess.get(&p).copied())
            .unwrap_or(0)
    }

    fn time(&self, age_secs: u64) -> u64 {
        self.c.now.saturating_sub(age_secs * 10_000_000)
    }

    fn tcb(&mut self, e: &Ep) -> Result<u64, Error> {
        let l = self.c.l;
        let va = self.pool.alloc(self.sp, &l.tcb_tag, l.tcb_size())?;
        // The TCB's AddrInfo is a path object {+0 Local, +0x10 Remote*}; the remote address
        // bytes live in the same block (facts 1.3 "AddrInfo").
        let path = self.pool.alloc(self.sp, b"IPpa", 0x40)?;
        // A TCB always has a local address object, even a BOUND one on 0.0.0.0.
        let local = self.local_block(e.local.ip())?;
        let mut p = Obj::new(0x40);
        p.u64(0, local);
        if let Some(r) = e.remote {
            p.u64(0x10, path + 0x28).bytes(0x28, &ip_bytes(r.ip()));
        }
        p.store(self.sp, path)?;
        let mut o = Obj::new(l.tcb_size());
        o.u64(l.tcb_inetaf, self.inetaf(e.local.ip()))
            .u64(l.tcb_addrinfo, path)
            .u32(l.tcb_state, e.state.code())
            .be16(l.tcb_lport, e.local.port())
            .be16(l.tcb_rport, e.remote.map_or(0, |r| r.port()))
            .u64(l.tcb_owner, self.owner(e.pid));
        if let Some(ct) = l.tcb_create {
            o.u64(ct, self.time(e.age_secs));
        }
        o.store(self.sp, va)?;
        Ok(va)
    }

    fn time_wait(&mut self, e: &Ep) -> Result<u64, Error> {
        let l = self.c.l;
        let va = self.pool.alloc(self.sp, b"TcTW", l.tw_size())?;
        let local = self.local_block(e.local.ip())?;
        let r = e
            .remote
            .ok_or_else(|| Error::Layout("a TIME_WAIT entry without a remote address".into()))?;
        let mut o = Obj::new(l.tw_size());
        o.u64(l.tw_inetaf, self.inetaf(e.local.ip()))
            .be16(l.tw_lport, e.local.port())
            .be16(l.tw_rport, r.port())
            .u64(l.tw_local, local)
            .u64(l.tw_time, self.time(e.age_secs));
        if l.tw_remote_inline {
            o.bytes(l.tw_remote, &ip_bytes(r.ip()));
        } else {
            let addr = self.pool.alloc(self.sp, b"IPra", 0x10)?;
            self.sp.write(addr, &ip_bytes(r.ip()))?;
            o.u64(l.tw_remote, addr);
        }
        o.store(self.sp, va)?;
        Ok(va)
    }

    fn listener(&mut self, e: &Ep) -> Result<u64, Error> {
        let l = self.c.l;
        let va = self.pool.alloc(self.sp, b"TcpL", l.tcpl_size())?;
        let local = self.local(e.local.ip())?;
        let mut o = Obj::new(l.tcpl_size());
        o.u64(l.tcpl_inetaf, self.inetaf(e.local.ip()))
            .u64(l.tcpl_owner, self.owner(e.pid))
            .u64(l.tcpl_local, local)
            .be16(l.tcpl_port, e.local.port());
        if let Some(t) = l.tcpl_time {
            o.u64(t, self.time(e.age_secs));
        }
        o.store(self.sp, va)?;
        Ok(va)
    }

    fn udp(&mut self, e: &Ep) -> Result<u64, Error> {
        let l = self.c.l;
        let va = self.pool.alloc(self.sp, b"UdpA", l.udp_size())?;
        let local = self.local(e.local.ip())?;
        let mut o = Obj::new(l.udp_size());
        o.u64(l.udp_inetaf, self.inetaf(e.local.ip()))
            .u64(l.udp_owner, self.owner(e.pid))
            .u64(l.udp_time, self.time(e.age_secs))
            .u64(l.udp_local, local)
            .be16(l.udp_port, e.local.port());
        o.store(self.sp, va)?;
        Ok(va)
    }
}

/// Writes every endpoint and the structures that index them; returns one [`Placed`] per
/// endpoint (same order) and the values of the tcpip globals.
pub fn write(
    sp: &mut Pages,
    pool: &mut Pool,
    c: &Ctx<'_>,
    eps: &[Ep],
) -> Result<(Vec<Placed>, Globals), Error> {
    let l = c.l;
    let mut w = Writer {
        sp,
        pool,
        c,
        inetaf: [0; 2],
        locals: HashMap::new(),
    };
    for (i, af) in [AF_INET, AF_INET6].into_iter().enumerate() {
        let va = w.pool.alloc(w.sp, b"InNl", 0x40)?;
        Obj::new(0x40).u16(l.inetaf_af, af).store(w.sp, va)?;
        w.inetaf[i] = va;
    }
    let parts = c.partitions as usize;
    // [partition][table] -> entries; table 0 SYN, 1 other TCBs, 2 TIME_WAIT (MEMORY-MODEL.md).
    let mut tables: Vec<[Vec<Entry>; 3]> = (0..parts).map(|_| Default::default()).collect();
    // Port -> objects chained from the port pools (LINK VAs), for TCP and UDP.
    let mut tcp_chain: BTreeMap<u16, Vec<u64>> = BTreeMap::new();
    let mut udp_chain: BTreeMap<u16, Vec<u64>> = BTreeMap::new();
    let mut tcp_bits = vec![0u8; 8192];
    let mut udp_bits = vec![0u8; 8192];
    let mut placed = Vec::with_capacity(eps.len());
    for e in eps {
        let port = e.local.port();
        let sig = tuple_hash(&e.local, e.remote.as_ref());
        let part = (sig >> 40) as usize % parts;
        let (va, tag) = match e.kind {
            Kind::Tcb => {
                let va = w.tcb(e)?;
                let t = if matches!(e.state, State::SynSent | State::SynRcvd) {
                    0
                } else {
                    1
                };
                tables[part][t].push(Entry {
                    link: va + u64::from(l.tcb_link),
                    sig,
                });
                (va, l.tcb_tag)
            }
            Kind::TimeWait => {
                let va = w.time_wait(e)?;
                tables[part][2].push(Entry {
                    link: va + u64::from(l.tw_link),
                    sig,
                });
                (va, *b"TcTW")
            }
            Kind::Listener => {
                let va = w.listener(e)?;
                tcp_chain
                    .entry(port)
                    .or_default()
                    .push(va + u64::from(l.tcpl_link));
                (va, *b"TcpL")
            }
            Kind::Udp => {
                let va = w.udp(e)?;
                udp_chain
                    .entry(port)
                    .or_default()
                    .push(va + u64::from(l.udp_link));
                udp_bits[usize::from(port / 8)] |= 1 << (port % 8);
                placed.push(Placed { va, tag: *b"UdpA" });
                continue;
            }
        };
        tcp_bits[usize::from(port / 8)] |= 1 << (port % 8);
        placed.push(Placed { va, tag });
    }
    let Writer { sp, pool, .. } = w;
    let partition_table = partitions(sp, pool, c, &tables)?;
    let tcp_pool = port_pool(sp, pool, l, &tcp_bits, &tcp_chain)?;
    let udp_pool = port_pool(sp, pool, l, &udp_bits, &udp_chain)?;
    let (tcp_root, udp_root) = if l.compartments {
        (
            compartment(sp, pool, l, b"TcCo", tcp_pool)?,
            compartment(sp, pool, l, b"UdCo", udp_pool)?,
        )
    } else {
        (tcp_pool, udp_pool)
    };
    Ok((
        placed,
        Globals {
            partition_table,
            partition_count: u64::from(c.partitions),
            tcp_root,
            udp_root,
        },
    ))
}

/// The partition array and, per partition, one "TcHT" block holding the three hash-table headers
/// that record[+0x00/+0x08/+0x10] point at (MEMORY-MODEL.md; MPF's TcHT reading in facts 1.2).
fn partitions(
    sp: &mut Pages,
    pool: &mut Pool,
    c: &Ctx<'_>,
    tables: &[[Vec<Entry>; 3]],
) -> Result<u64, Error> {
    let stride = u64::from(c.l.partition_stride);
    let n = tables.len() as u64;
    // The array's own tag is not documented by any source; "TcPT" is this builder's choice.
    let array = pool.alloc(sp, b"TcPT", stride * n)?;
    let sizes = [c.hash.syn, c.hash.tcb, c.hash.time_wait];
    for (i, t) in tables.iter().enumerate() {
        let rec = array + i as u64 * stride;
        // Headers sit 0x28 apart, so record[+0x10] - record[+0x00] = 0x50 >= 0x40 as MPF requires.
        let block = pool.alloc(sp, b"TcHT", 3 * hash::HEADER_SIZE + 0x18)?;
        let mut r = Obj::new(stride);
        for k in 0..3u32 {
            let hdr = block + u64::from(k) * hash::HEADER_SIZE;
            hash::write(sp, pool, hdr, sizes[k as usize], &t[k as usize])?;
            r.u64(k * 8, hdr);
        }
        // An empty self-linked LIST_ENTRY at +0x18 is how MPF recognises a record (facts 1.2).
        r.u64(0x18, rec + 0x18).u64(0x20, rec + 0x18);
        r.store(sp, rec)?;
    }
    Ok(array)
}

/// An INET_PORT_POOL ("InPP", page-aligned big-pool block of 0x2BC0 bytes as V3 sizes it) with
/// the port bitmap, the InPA blocks of every 256-port group in use and their entry arrays.
fn port_pool(
    sp: &mut Pages,
    pool: &mut Pool,
    l: &Layout,
    bits: &[u8],
    chains: &BTreeMap<u16, Vec<u64>>,
) -> Result<u64, Error> {
    const SIZE: u64 = 0x2BC0;
    // The bitmap buffer is the pool's 8 KiB tail: 0x2BC0 - 0x2000 leaves room for every build's
    // PortAssignments array (at most 0xE8 + 0x800). No source places the buffer; this is a choice.
    const BITMAP_AT: u64 = SIZE - 0x2000;
    let pp = pool.alloc_big(sp, b"InPP", SIZE)?;
    let mut o = Obj::new(SIZE);
    o.u32(l.pool_bitmap, 65536)
        .u64(l.pool_bitmap + 8, pp + BITMAP_AT);
    o.bytes(BITMAP_AT as u32, bits);
    let inpa_size = u64::from(l.inpa_array) + 8;
    for group in 0..256u32 {
        let lo = (group * 32) as usize;
        if bits[lo..lo + 32].iter().all(|&b| b == 0) {
            continue;
        }
        let inpa = pool.alloc(sp, b"InPA", inpa_size)?;
        let array = pool.alloc_big(sp, b"InPA", 256 * u64::from(l.entry_stride))?;
        sp.write(inpa + u64::from(l.inpa_array), &array.to_le_bytes())?;
        o.u64(l.pool_assignments + group * 8, inpa);
        for (&port, links) in chains.range((group as u16) << 8..=((group as u16) << 8 | 0xFF)) {
            let slot =
                array + u64::from(port & 0xFF) * u64::from(l.entry_stride) + u64::from(l.entry_ptr);
            // Tagged pointer: walkers clear the low bits (facts 1.6).
            sp.write(slot, &(links[0] | 1).to_le_bytes())?;
            for pair in links.windows(2) {
                sp.write(pair[0], &pair[1].to_le_bytes())?;
            }
        }
    }
    debug_assert!(pp % PAGE == 0);
    o.store(sp, pp)?;
    Ok(pp)
}

/// TcpCompartmentSet chain: "InCS" +0x148 -> "InCo" +0x20 -> "TcCo"/"UdCo" +0x00 -> InPP.
fn compartment(
    sp: &mut Pages,
    pool: &mut Pool,
    l: &Layout,
    tag: &[u8; 4],
    pp: u64,
) -> Result<u64, Error> {
    let proto = pool.alloc(sp, tag, 0x10)?;
    sp.write(proto, &pp.to_le_bytes())?;
    let co = pool.alloc(sp, b"InCo", 0x30)?;
    sp.write(co + u64::from(l.co_protocol), &proto.to_le_bytes())?;
    let cs = pool.alloc(sp, b"InCS", 0x180)?;
    sp.write(cs + u64::from(l.cs_compartment), &co.to_le_bytes())?;
    Ok(cs)
}
