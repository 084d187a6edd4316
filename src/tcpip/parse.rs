//! Turning tcpip objects (TCB, TIME_WAIT, listener, UDP) into [`Endpoint`]s.

use super::obj::{
    self, address_family, follow_path, has_tag, plausible_filetime, read_ip, unspecified, Obj,
    Sticky,
};
use crate::diag::Diagnostics;
use crate::kernel::Processes;
use crate::model::{Endpoint, ObjectKind, Owner, Protocol, TcpState};
use crate::target::{Target, TargetExt};
use crate::walk::is_kernel_ptr;
use std::collections::HashSet;
use symbols::layouts::TcpipLayout;
use symbols::layouts::{AddrStorage, Offset, ScanRange};

/// Per-walk state: the layout, the candidates that validated, the objects already seen.
pub struct Parser<'a> {
    pub target: &'a dyn Target,
    pub layout: &'a TcpipLayout,
    pub procs: &'a mut Processes,
    pub diag: &'a mut Diagnostics,
    pub seen: HashSet<u64>,
    pub endpoints: Vec<Endpoint>,
    /// Where tcpip's globals are (tcpip.pdb, or inferred from its data section).
    pub globals: super::infer::Globals,
    pick: Picks,
}

/// Which object's owner field is being read (each keeps its own sticky candidate).
#[derive(Clone, Copy)]
enum OwnerKind {
    Tcb,
    Listener,
    Udp,
}

#[derive(Default)]
struct Picks {
    tcb_link: Sticky,
    tcb_state: Sticky,
    tcb_owner: Sticky,
    tcb_inet_af: Sticky,
    af: Sticky,
    tw_variant: std::cell::Cell<usize>,
    lis_owner: Sticky,
    udp_owner: Sticky,
}

impl<'a> Parser<'a> {
    pub fn new(
        target: &'a dyn Target,
        layout: &'a TcpipLayout,
        procs: &'a mut Processes,
        diag: &'a mut Diagnostics,
    ) -> Self {
        Self {
            target,
            layout,
            procs,
            diag,
            seen: HashSet::new(),
            endpoints: Vec::new(),
            globals: Default::default(),
            pick: Picks::default(),
        }
    }

    /// Resolves an owner pointer to a process (or the kernel); `None` if it leads nowhere.
    fn owner(&mut self, eprocess: u64) -> Option<Owner> {
        let p = self.procs.resolve(self.target, eprocess)?;
        Some(if p.pid == 4 {
            Owner::Kernel { eprocess }
        } else {
            Owner::Process {
                pid: p.pid,
                image: p.image.clone(),
                eprocess,
            }
        })
    }

    /// Owner from the first candidate offset whose pointer resolves to a process; `scan` (the
    /// layout's window, MemProcFS's EPROCESS scan for Win11 TCBs) is the fallback.
    fn owner_at(
        &mut self,
        o: &Obj,
        field: &Offset,
        which: OwnerKind,
        scan: Option<&ScanRange>,
    ) -> Owner {
        let sticky = match which {
            OwnerKind::Tcb => &self.pick.tcb_owner,
            OwnerKind::Listener => &self.pick.lis_owner,
            OwnerKind::Udp => &self.pick.udp_owner,
        };
        let (procs, target) = (&mut *self.procs, self.target);
        let picked = sticky.pick(field, |off| {
            let p = o.u64(off)?;
            procs.resolve(target, p).map(|_| p)
        });
        let eprocess = picked.map(|(_, p)| p).or_else(|| {
            scan?
                .offsets()
                .find_map(|off| o.u64(off).filter(|&p| self.procs.get(p).is_some()))
        });
        eprocess
            .and_then(|p| self.owner(p))
            .unwrap_or_else(|| Owner::Unknown {
                pointer: field
                    .candidates
                    .first()
                    .and_then(|&c| o.u64(c))
                    .unwrap_or(0),
            })
    }

    /// Tries `link` as a TCB hash link, then as a TIME_WAIT link; records what it finds.
    pub fn from_hash_link(&mut self, link: u64, via: &'static str) {
        let t = self.target;
        let tcb_tags = &self.layout.tcb.tags;
        if let Some((_, obj)) = self.pick.tcb_link.pick(&self.layout.tcb.hash_link, |off| {
            let obj = link.wrapping_sub(u64::from(off));
            has_tag(t, obj, tcb_tags).then_some(obj)
        }) {
            self.tcb(obj, via);
            return;
        }
        let tw = &self.layout.time_wait;
        for &off in &tw.link.candidates {
            let obj = link.wrapping_sub(u64::from(off));
            if has_tag(t, obj, &tw.tags) {
                self.time_wait(obj, via);
                return;
            }
        }
        self.diag.warn(
            "hash-entry-unknown",
            format!(
                "hash entry {link:#x} is neither a TCB nor a TIME_WAIT object (no known pool tag)"
            ),
        );
    }

    /// Parses a TCB (`TcpE`/`TTcb`).
    pub fn tcb(&mut self, va: u64, via: &'static str) {
        if !self.seen.insert(va) {
            return;
        }
        let l = &self.layout.tcb;
        let Some(o) = Obj::read(self.target, va, l.size) else {
            self.diag
                .warn("tcb-unreadable", format!("TCB {va:#x} is not readable"));
            return;
        };
        let Some((state_off, state)) = self
            .pick
            .tcb_state
            .pick(&l.state, |off| o.u32(off).and_then(TcpState::from_raw))
        else {
            self.diag.warn(
                "tcb-bad-state",
                format!("TCB {va:#x}: no candidate offset holds a valid TCP state"),
            );
            return;
        };
        let t = self.target;
        let af_field = &self.layout.inet_af.address_family;
        let af_pick = &self.pick.af;
        let af = self.pick.tcb_inet_af.pick(&l.inet_af, |off| {
            address_family(t, o.u64(off)?, af_field, af_pick)
        });
        let Some((inet_af_off, af)) = af else {
            self.diag.warn(
                "tcb-bad-af",
                format!("TCB {va:#x}: no INETAF with AF_INET or AF_INET6"),
            );
            return;
        };
        // Ports sit right after the state in every layout variant (MPF: State+4/+6), so the port
        // candidates are taken at the index of the state candidate that validated.
        let pos = l
            .state
            .candidates
            .iter()
            .position(|&c| c == state_off)
            .unwrap_or(0);
        let nth = |f: &Offset| {
            f.candidates
                .get(pos)
                .or(f.candidates.first())
                .copied()
                .unwrap_or(0)
        };
        let local_port = o.port(nth(&l.local_port)).unwrap_or(0);
        let remote_port = o.port(nth(&l.remote_port)).unwrap_or(0);
        let (local_ip, remote_ip) = self.tcb_addresses(&o, af, inet_af_off);
        let owner = self.owner_at(&o, &l.owner, OwnerKind::Tcb, l.owner_scan.as_ref());
        let mut state = state;
        // netstat's BOUND: a CLOSED TCB holding a local port with no peer.
        if state == TcpState::Closed && remote_port == 0 && local_port != 0 {
            state = TcpState::Bound;
        }
        let time = l
            .create_time
            .as_ref()
            .and_then(|f| o.u64(f.preferred()))
            .filter(|&t| plausible_filetime(t));
        let tag = obj::pool_tag(self.target, va)
            .map(|t| t.to_string())
            .unwrap_or_default();
        self.endpoints.push(Endpoint {
            protocol: Protocol::Tcp,
            state: Some(state),
            local_ip,
            local_port,
            remote_ip: if remote_port == 0 { None } else { remote_ip },
            remote_port: (remote_port != 0).then_some(remote_port),
            owner_source: if matches!(owner, Owner::Unknown { .. }) {
                "none"
            } else {
                "tcb"
            },
            owner,
            object: va,
            kind: ObjectKind::Tcb,
            pool_tag: tag,
            time,
            found_via: via,
        });
    }

    /// Local and remote IP of a TCB through ADDRINFO: local = *(*(Local + pData)), remote = *Remote.
    /// ADDRINFO sits right after INETAF in every variant (MemProcFS: INET_Addr = InetAF + 8,
    /// tcpip-afd-facts 1.3), so it is taken next to the INETAF pointer that validated; any other
    /// candidate is used only if that one is not a kernel pointer.
    fn tcb_addresses(
        &mut self,
        o: &Obj,
        af: u16,
        inet_af_off: u32,
    ) -> (Option<std::net::IpAddr>, Option<std::net::IpAddr>) {
        let l = self.layout;
        let t = self.target;
        let next_to_af = inet_af_off + 8;
        let order = std::iter::once(next_to_af).filter(|o| l.tcb.addr_info.allows(*o));
        let others = l
            .tcb
            .addr_info
            .candidates
            .iter()
            .copied()
            .filter(|&c| c != next_to_af && c != inet_af_off);
        let ai = order
            .chain(others)
            .find_map(|off| o.u64(off).filter(|&ai| is_kernel_ptr(ai, 8)));
        let Some(ai) = ai else {
            return (None, None);
        };
        let local = t
            .read_u64(ai + u64::from(l.addr_info.local.preferred()))
            .ok()
            .and_then(|la| self.local_address_ip(la, af));
        let remote = t
            .read_u64(ai + u64::from(l.addr_info.remote.preferred()))
            .ok()
            .filter(|&p| is_kernel_ptr(p, 4))
            .and_then(|ip| read_ip(t, ip, af));
        (local, remote)
    }

    /// Parses a TIME_WAIT object (`TcTW`). Candidate k of every field belongs to source variant k
    /// (layout doc), so whole variants are tried, the last good one first.
    pub fn time_wait(&mut self, va: u64, via: &'static str) {
        if !self.seen.insert(va) {
            return;
        }
        let l = &self.layout.time_wait;
        let Some(o) = Obj::read(self.target, va, l.size) else {
            self.diag.warn(
                "timewait-unreadable",
                format!("TIME_WAIT object {va:#x} is not readable"),
            );
            return;
        };
        let variants = l
            .inet_af
            .candidates
            .len()
            .max(l.local_port.candidates.len())
            .max(1);
        let nth = |f: &Offset, k: usize| {
            f.candidates
                .get(k)
                .or(f.candidates.last())
                .copied()
                .unwrap_or(0)
        };
        let first = self.pick.tw_variant.get();
        let order = std::iter::once(first).chain((0..variants).filter(move |&k| k != first));
        let mut parsed = None;
        for k in order {
            let Some(af) = o.u64(nth(&l.inet_af, k)).and_then(|p| {
                address_family(
                    self.target,
                    p,
                    &self.layout.inet_af.address_family,
                    &self.pick.af,
                )
            }) else {
                continue;
            };
            let (Some(lp), Some(rp)) = (
                o.port(nth(&l.local_port, k)),
                o.port(nth(&l.remote_port, k)),
            ) else {
                continue;
            };
            if lp == 0 || rp == 0 {
                continue;
            }
            self.pick.tw_variant.set(k);
            parsed = Some((k, af, lp, rp));
            break;
        }
        let Some((k, af, local_port, remote_port)) = parsed else {
            self.diag.warn(
                "timewait-bad",
                format!(
                    "TIME_WAIT object {va:#x}: no layout variant gives a valid family and ports"
                ),
            );
            return;
        };
        let local_ip = o.u64(nth(&l.local_addr, k)).and_then(|p| {
            l.local_addr_paths
                .iter()
                .find_map(|path| follow_path(self.target, p, path, af))
        });
        let remote_off = nth(&l.remote_addr, k);
        let storage = l
            .remote_addr_storage
            .get(k)
            .or(l.remote_addr_storage.last())
            .copied()
            .unwrap_or(AddrStorage::Inline);
        let remote_ip = match storage {
            AddrStorage::Inline => {
                let len = if af == obj::AF_INET6 { 16 } else { 4 };
                o.slice(remote_off, len).map(|b| {
                    if len == 16 {
                        std::net::IpAddr::from(<[u8; 16]>::try_from(b).unwrap_or([0; 16]))
                    } else {
                        std::net::IpAddr::from(<[u8; 4]>::try_from(b).unwrap_or([0; 4]))
                    }
                })
            }
            _ => o
                .u64(remote_off)
                .filter(|&p| is_kernel_ptr(p, 4))
                .and_then(|p| read_ip(self.target, p, af)),
        };
        let time = l
            .time
            .as_ref()
            .and_then(|f| o.u64(f.preferred()))
            .filter(|&t| plausible_filetime(t));
        self.endpoints.push(Endpoint {
            protocol: Protocol::Tcp,
            state: Some(TcpState::TimeWait),
            local_ip,
            local_port,
            remote_ip,
            remote_port: Some(remote_port),
            owner: Owner::Unattributed,
            owner_source: "none",
            object: va,
            kind: ObjectKind::TimeWait,
            pool_tag: obj::pool_tag(self.target, va)
                .map(|t| t.to_string())
                .unwrap_or_default(),
            time,
            found_via: via,
        });
    }

    /// Parses a listener (`TcpL`).
    pub fn listener(&mut self, va: u64, via: &'static str) {
        self.port_holder(va, via, ObjectKind::Listener);
    }

    /// Parses a UDP endpoint (`UdpA`).
    pub fn udp(&mut self, va: u64, via: &'static str) {
        self.port_holder(va, via, ObjectKind::Udp);
    }

    /// A listener or UDP endpoint: an object that holds a local port with no peer, found on the
    /// port pool's assignment chains. A null local address means a wildcard bind.
    fn port_holder(&mut self, va: u64, via: &'static str, kind: ObjectKind) {
        if !self.seen.insert(va) {
            return;
        }
        let layout = self.layout;
        let (what, size, inet_af, port, local_addr, owner, create_time, owner_kind) = match kind {
            ObjectKind::Listener => {
                let l = &layout.listener;
                (
                    "listener",
                    l.size,
                    &l.inet_af,
                    &l.port,
                    &l.local_addr,
                    &l.owner,
                    &l.create_time,
                    OwnerKind::Listener,
                )
            }
            _ => {
                let l = &layout.udp;
                (
                    "UDP endpoint",
                    l.size,
                    &l.inet_af,
                    &l.port,
                    &l.local_addr,
                    &l.owner,
                    &l.create_time,
                    OwnerKind::Udp,
                )
            }
        };
        let Some(o) = Obj::read(self.target, va, size) else {
            self.diag.warn(
                "holder-unreadable",
                format!("{what} {va:#x} is not readable"),
            );
            return;
        };
        let af = o.u64(inet_af.preferred()).and_then(|p| {
            address_family(
                self.target,
                p,
                &layout.inet_af.address_family,
                &self.pick.af,
            )
        });
        let Some(af) = af else {
            self.diag.warn(
                "holder-bad-af",
                format!("{what} {va:#x}: no INETAF with AF_INET or AF_INET6"),
            );
            return;
        };
        let la = o.u64(local_addr.preferred()).unwrap_or(0);
        let local_ip = match (la, kind) {
            (0, _) => Some(unspecified(af)),
            (_, ObjectKind::Listener) => self.local_address_ip(la, af),
            // UDP's local-address path differs between sources (facts 1.5 [!]): try each.
            _ => layout
                .udp
                .local_addr_paths
                .iter()
                .find_map(|p| follow_path(self.target, la, p, af)),
        };
        let owner = self.owner_at(&o, owner, owner_kind, None);
        let time = create_time
            .as_ref()
            .and_then(|f| o.u64(f.preferred()))
            .filter(|&t| plausible_filetime(t));
        let (protocol, state, source) = match kind {
            ObjectKind::Listener => (Protocol::Tcp, Some(TcpState::Listening), "listener"),
            _ => (Protocol::Udp, None, "udp"),
        };
        self.endpoints.push(Endpoint {
            protocol,
            state,
            local_ip,
            local_port: o.port(port.preferred()).unwrap_or(0),
            remote_ip: None,
            remote_port: None,
            owner_source: if matches!(owner, Owner::Unknown { .. }) {
                "none"
            } else {
                source
            },
            owner,
            object: va,
            kind,
            pool_tag: obj::pool_tag(self.target, va)
                .map(|t| t.to_string())
                .unwrap_or_default(),
            time,
            found_via: via,
        });
    }

    /// LOCAL_ADDRESS -> pData -> pointer -> IP (two dereferences, tcpip-afd-facts 1.3).
    fn local_address_ip(&self, la: u64, af: u16) -> Option<std::net::IpAddr> {
        let t = self.target;
        if !is_kernel_ptr(la, 8) {
            return None;
        }
        let pp = t
            .read_u64(la + u64::from(self.layout.local_address.pdata.preferred()))
            .ok()
            .filter(|&p| is_kernel_ptr(p, 8))?;
        let ip = t.read_u64(pp).ok().filter(|&p| is_kernel_ptr(p, 4))?;
        read_ip(t, ip, af)
    }
}

#[cfg(test)]
mod tests;
