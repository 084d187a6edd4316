//! The dynamic port range and how much of it is held, in total and by whom.

use crate::model::{Endpoint, Owner, Protocol, TcpState};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

/// A port range, `start..=start + count - 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PortRange {
    pub start: u16,
    pub count: u32,
}

impl PortRange {
    /// Vista/2008 and later: 49152-65535 (KB929851, tcpip-afd-facts 1.6). Set per transport and IP
    /// version with `netsh int ipv4|ipv6 set dynamicport tcp|udp start= num=`.
    pub const DEFAULT_NT6: PortRange = PortRange {
        start: 49152,
        count: 16384,
    };
    /// Before Vista: 1025-5000.
    pub const DEFAULT_NT5: PortRange = PortRange {
        start: 1025,
        count: 3976,
    };

    pub fn end(&self) -> u32 {
        u32::from(self.start) + self.count - 1
    }
    pub fn contains(&self, port: u16) -> bool {
        u32::from(port) >= u32::from(self.start) && u32::from(port) <= self.end()
    }
    /// Parses `49152-65535` or `start,count`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not a port range (expected START-END, e.g. 49152-65535)");
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let start: u16 = a.trim().parse().map_err(|_| bad())?;
        let end: u16 = b.trim().parse().map_err(|_| bad())?;
        if start == 0 || end < start {
            return Err(bad());
        }
        Ok(Self {
            start,
            count: u32::from(end) - u32::from(start) + 1,
        })
    }
}

/// Ports marked in use in a port pool's bitmap (bit n set: at least one object holds port n).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortBitmap {
    pub ports: BTreeSet<u16>,
}

/// How much of one protocol's dynamic range is held.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capacity {
    pub protocol: Protocol,
    pub range: PortRange,
    /// `override` or `build default`.
    pub range_source: &'static str,
    /// Distinct ports inside the range held by at least one endpoint or marked in the bitmap.
    pub in_use: u32,
    pub free: u32,
    pub percent_used: f64,
    /// Ports in the range marked in tcpip's port-pool bitmap, when it was read.
    pub bitmap_in_use: Option<u32>,
    /// Distinct ports in the range held by endpoints the walk found.
    pub endpoints_in_use: u32,
    /// Ports in the range held by entries of each state (TCP) or by UDP endpoints.
    pub by_state: BTreeMap<String, u32>,
    /// Ports in the range held by kernel-owned endpoints.
    pub kernel_in_use: u32,
}

pub fn capacity(
    protocol: Protocol,
    range: PortRange,
    range_source: &'static str,
    endpoints: &[Endpoint],
    bitmap: Option<&PortBitmap>,
) -> Capacity {
    let mut ports: BTreeSet<u16> = BTreeSet::new();
    let mut by_state: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
    let mut kernel: BTreeSet<u16> = BTreeSet::new();
    for e in endpoints
        .iter()
        .filter(|e| e.protocol == protocol && range.contains(e.local_port))
    {
        ports.insert(e.local_port);
        let key = e.state.map_or("UDP", TcpState::name).to_string();
        by_state.entry(key).or_default().insert(e.local_port);
        if e.owner.is_kernel() {
            kernel.insert(e.local_port);
        }
    }
    let endpoints_in_use = ports.len() as u32;
    let bitmap_in_use = bitmap.map(|b| {
        let n = b.ports.iter().filter(|&&p| range.contains(p)).count() as u32;
        ports.extend(b.ports.iter().copied().filter(|&p| range.contains(p)));
        n
    });
    let in_use = ports.len() as u32;
    Capacity {
        protocol,
        range,
        range_source,
        in_use,
        free: range.count.saturating_sub(in_use),
        percent_used: f64::from(in_use) * 100.0 / f64::from(range.count.max(1)),
        bitmap_in_use,
        endpoints_in_use,
        by_state: by_state
            .into_iter()
            .map(|(k, v)| (k, v.len() as u32))
            .collect(),
        kernel_in_use: kernel.len() as u32,
    }
}

/// Everything one owner holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OwnerSummary {
    pub owner: Owner,
    /// True for a process that has exited (or is off the active list) but still holds endpoints.
    pub exited: bool,
    pub total: u64,
    pub tcp_by_state: BTreeMap<String, u64>,
    pub udp: u64,
    /// Distinct local ports inside the dynamic ranges (TCP and UDP counted separately).
    pub dynamic_ports: u64,
    pub top_remotes: Vec<RemoteCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteCount {
    pub remote: String,
    pub count: u64,
}

/// Groups endpoints by owner, largest holders of dynamic ports first.
pub fn owners(
    endpoints: &[Endpoint],
    tcp: PortRange,
    udp: PortRange,
    exited: &dyn Fn(&Owner) -> bool,
    top: usize,
) -> Vec<OwnerSummary> {
    let mut groups: HashMap<&Owner, Vec<&Endpoint>> = HashMap::new();
    for e in endpoints {
        groups.entry(&e.owner).or_default().push(e);
    }
    let mut out: Vec<OwnerSummary> = groups
        .into_iter()
        .map(|(owner, eps)| {
            let mut tcp_by_state = BTreeMap::new();
            let mut dyn_ports = BTreeSet::new();
            let mut udp_count = 0;
            for e in &eps {
                match e.protocol {
                    Protocol::Tcp => {
                        *tcp_by_state.entry(e.state_name().to_string()).or_insert(0) += 1
                    }
                    Protocol::Udp => udp_count += 1,
                }
                let range = if e.protocol == Protocol::Tcp {
                    tcp
                } else {
                    udp
                };
                if range.contains(e.local_port) {
                    dyn_ports.insert((e.protocol, e.local_port));
                }
            }
            OwnerSummary {
                owner: owner.clone(),
                exited: exited(owner),
                total: eps.len() as u64,
                tcp_by_state,
                udp: udp_count,
                dynamic_ports: dyn_ports.len() as u64,
                top_remotes: top_remotes(eps.iter().copied(), top.min(5)),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.dynamic_ports
            .cmp(&a.dynamic_ports)
            .then(b.total.cmp(&a.total))
            .then(a.owner.cmp(&b.owner))
    });
    out
}

/// The most frequent remote endpoints (ip:port), most first, ties by address.
pub fn top_remotes<'a>(
    endpoints: impl Iterator<Item = &'a Endpoint>,
    top: usize,
) -> Vec<RemoteCount> {
    count_remotes(endpoints, top, |ip, port| match ip {
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        v4 => format!("{v4}:{port}"),
    })
}

/// Remote endpoints grouped by network (IPv4 /24, IPv6 /64) and port, most first: thousands of
/// connections to a pool of servers show as one line ("120.55.35.0/24:443 16420").
pub fn top_remote_networks<'a>(
    endpoints: impl Iterator<Item = &'a Endpoint>,
    top: usize,
) -> Vec<RemoteCount> {
    count_remotes(endpoints, top, |ip, port| match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24:{port}", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("[{net}/64]:{port}")
        }
    })
}

/// Counts endpoints with a real peer under `key(ip, port)`, most first, ties by key.
fn count_remotes<'a>(
    endpoints: impl Iterator<Item = &'a Endpoint>,
    top: usize,
    key: impl Fn(IpAddr, u16) -> String,
) -> Vec<RemoteCount> {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for e in endpoints {
        if let (Some(ip), Some(port)) = (e.remote_ip, e.remote_port) {
            if port != 0 && !ip.is_unspecified() {
                *counts.entry(key(ip, port)).or_insert(0) += 1;
            }
        }
    }
    let mut v: Vec<RemoteCount> = counts
        .into_iter()
        .map(|(remote, count)| RemoteCount { remote, count })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then(a.remote.cmp(&b.remote)));
    v.truncate(top);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ObjectKind;

    fn ep(port: u16, state: TcpState, owner: Owner, remote: Option<&str>) -> Endpoint {
        Endpoint {
            protocol: Protocol::Tcp,
            state: Some(state),
            local_ip: None,
            local_port: port,
            remote_ip: remote.map(|r| r.parse().unwrap()),
            remote_port: remote.map(|_| 443),
            owner,
            owner_source: "tcb",
            object: 0,
            kind: ObjectKind::Tcb,
            pool_tag: "TcpE".into(),
            time: None,
            found_via: "partition-table",
        }
    }

    #[test]
    fn range_parse_and_contains() {
        let r = PortRange::parse("49152-65535").unwrap();
        assert_eq!(r, PortRange::DEFAULT_NT6);
        assert!(r.contains(65535) && r.contains(49152) && !r.contains(49151));
        assert!(PortRange::parse("10-5").is_err());
        assert!(PortRange::parse("abc").is_err());
    }

    #[test]
    fn capacity_unions_bitmap_and_endpoints() {
        let java = Owner::Process {
            pid: 1536,
            image: "java.exe".into(),
            eprocess: 1,
        };
        let eps = vec![
            ep(
                50000,
                TcpState::TimeWait,
                Owner::Unattributed,
                Some("120.55.35.1"),
            ),
            ep(
                50000,
                TcpState::Established,
                java.clone(),
                Some("120.55.35.2"),
            ),
            ep(50001, TcpState::Bound, java.clone(), None),
            ep(80, TcpState::Listening, java, None),
        ];
        let bm = PortBitmap {
            ports: [50001, 50002, 135].into_iter().collect(),
        };
        let c = capacity(
            Protocol::Tcp,
            PortRange::DEFAULT_NT6,
            "build default",
            &eps,
            Some(&bm),
        );
        assert_eq!(
            (c.in_use, c.endpoints_in_use, c.bitmap_in_use),
            (3, 2, Some(2))
        );
        assert_eq!(c.free, 16384 - 3);
        assert_eq!(c.by_state["TIME_WAIT"], 1);
        assert_eq!(c.by_state["BOUND"], 1);
    }

    #[test]
    fn remote_networks_group_by_prefix_and_port() {
        let o = Owner::Unattributed;
        let eps = [
            ep(50000, TcpState::TimeWait, o.clone(), Some("120.55.35.1")),
            ep(50001, TcpState::TimeWait, o.clone(), Some("120.55.35.200")),
            ep(50002, TcpState::Established, o.clone(), Some("10.0.0.9")),
            ep(50003, TcpState::Established, o, Some("2001:db8:1:2::5")),
        ];
        let n = top_remote_networks(eps.iter(), 10);
        assert_eq!(
            n[0],
            RemoteCount {
                remote: "120.55.35.0/24:443".into(),
                count: 2
            }
        );
        assert!(n.iter().any(|r| r.remote == "[2001:db8:1:2::/64]:443"));
        assert_eq!(n.len(), 3);
    }

    #[test]
    fn owners_sorted_by_dynamic_ports() {
        let a = Owner::Process {
            pid: 8,
            image: "a.exe".into(),
            eprocess: 1,
        };
        let b = Owner::Process {
            pid: 12,
            image: "b.exe".into(),
            eprocess: 2,
        };
        let eps = vec![
            ep(50000, TcpState::Established, a.clone(), Some("10.0.0.1")),
            ep(50001, TcpState::Established, b.clone(), Some("10.0.0.1")),
            ep(50002, TcpState::Established, b.clone(), Some("10.0.0.2")),
            ep(50002, TcpState::CloseWait, b.clone(), Some("10.0.0.2")),
        ];
        let o = owners(
            &eps,
            PortRange::DEFAULT_NT6,
            PortRange::DEFAULT_NT6,
            &|_| false,
            10,
        );
        assert_eq!(o[0].owner, b);
        assert_eq!((o[0].total, o[0].dynamic_ports), (3, 2));
        assert_eq!(
            o[0].top_remotes[0],
            RemoteCount {
                remote: "10.0.0.2:443".into(),
                count: 2
            }
        );
        assert_eq!(o[1].owner, a);
    }
}
