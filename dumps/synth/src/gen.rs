//! Expands a scenario into a flat list of endpoints: parses addresses, runs the bulk generators
//! (seeded, so the same scenario always yields the same list) and hands out local ports.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::scenario::{Scenario, State};
use crate::Error;

/// What kind of tcpip object an endpoint becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A TCB (`TcpE` / `TTcb`) in any state but LISTEN and TIME_WAIT.
    Tcb,
    /// A TIME_WAIT entry (`TcTW`).
    TimeWait,
    /// A listener (`TcpL`).
    Listener,
    /// A UDP endpoint (`UdpA`).
    Udp,
}

/// One endpoint before it is laid out in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Ep {
    pub kind: Kind,
    pub state: State,
    pub local: SocketAddr,
    pub remote: Option<SocketAddr>,
    /// Process owning it (the owner pointer for TCB/TcpL/UdpA; the AFD owner for TIME_WAIT).
    pub pid: Option<u32>,
    /// Opened by a kernel client (WSK): no AFD endpoint.
    pub kernel: bool,
    /// A user-mode socket (AFD endpoint) refers to it.
    pub afd: bool,
    /// Seconds spent in this state (TIME_WAIT timestamp) or since creation (others).
    pub age_secs: u64,
}

/// SplitMix64: small, fast, and fully determined by the seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5EED_0F90_11EA_4B00)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform-enough value in lo..=hi.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// Parses "lo-hi" (or a single number) into an inclusive range.
pub fn parse_range(s: &str, what: &str) -> Result<(u64, u64), Error> {
    let err = || Error::Scenario(format!("{what} {s:?} is not a range \"lo-hi\" of numbers"));
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (
            a.trim().parse().map_err(|_| err())?,
            b.trim().parse().map_err(|_| err())?,
        ),
        None => {
            let v = s.trim().parse().map_err(|_| err())?;
            (v, v)
        }
    };
    if lo > hi {
        return Err(err());
    }
    Ok((lo, hi))
}

/// Parses `ip:port` / `[ip6]:port`.
pub fn parse_sock(s: &str) -> Result<SocketAddr, Error> {
    s.parse().map_err(|_| {
        Error::Scenario(format!(
            "{s:?} is not an address \"ip:port\" or \"[ip6]:port\""
        ))
    })
}

/// A remote population "a.b.c.d/len:port" or "[v6/len]:port".
struct Cidr {
    base: IpAddr,
    hosts: u64,
    /// Remote port range (a single port for servers, a client's dynamic range for inbound).
    ports: (u16, u16),
}

fn parse_cidr(s: &str) -> Result<Cidr, Error> {
    let err = || {
        Error::Scenario(format!(
            "remote {s:?} is not \"a.b.c.d/len:port\" or \"[v6/len]:port\""
        ))
    };
    let (net, port) = if let Some(rest) = s.strip_prefix('[') {
        let (net, port) = rest.split_once("]:").ok_or_else(err)?;
        (net, port)
    } else {
        s.rsplit_once(':').ok_or_else(err)?
    };
    let (plo, phi) = parse_range(port, "remote port").map_err(|_| err())?;
    let (plo, phi) = match (u16::try_from(plo), u16::try_from(phi)) {
        (Ok(a), Ok(b)) if a > 0 => (a, b),
        _ => return Err(err()),
    };
    let (addr, len) = match net.split_once('/') {
        Some((a, l)) => (a, l.parse::<u32>().map_err(|_| err())?),
        None => (net, if net.contains(':') { 128 } else { 32 }),
    };
    let base: IpAddr = addr.parse().map_err(|_| err())?;
    let bits = if base.is_ipv4() { 32 } else { 128 };
    if len > bits || len == 0 {
        return Err(err());
    }
    let host_bits = (bits - len).min(24);
    Ok(Cidr {
        base,
        hosts: 1 << host_bits,
        ports: (plo, phi),
    })
}

impl Cidr {
    fn host(&self, i: u64) -> IpAddr {
        // Skip the network address (.0) of subnets larger than one host.
        let i = if self.hosts > 2 {
            1 + i % (self.hosts - 2)
        } else {
            i % self.hosts
        };
        match self.base {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a).wrapping_add(i as u32))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a).wrapping_add(u128::from(i)))),
        }
    }
}

/// Hands out local ports: first ones no endpoint uses yet (in a seeded order through the range),
/// then, for connections only, ports already used (a 4-tuple stays unique through the remote).
struct Ports {
    used: Vec<bool>,
}

impl Ports {
    fn mark(&mut self, p: u16) {
        self.used[usize::from(p)] = true;
    }

    /// `count` ports from lo..=hi; `shareable` allows reuse once the free ones run out.
    fn take(
        &mut self,
        rng: &mut Rng,
        lo: u16,
        hi: u16,
        count: u32,
        shareable: bool,
    ) -> Result<Vec<u16>, Error> {
        let n = u64::from(hi - lo) + 1;
        let mut step = rng.range(1, n) | 1;
        while gcd(step, n) != 1 {
            step += 2;
        }
        let start = rng.range(0, n - 1);
        let order = (0..n).map(|k| lo + ((start + k * step) % n) as u16);
        let mut out: Vec<u16> = order
            .clone()
            .filter(|&p| !self.used[usize::from(p)])
            .take(count as usize)
            .collect();
        if out.len() < count as usize {
            if !shareable {
                return Err(Error::Scenario(format!(
                    "only {} free ports left in {lo}-{hi} for {count} endpoints that cannot share a port",
                    out.len()
                )));
            }
            let all: Vec<u16> = order.collect();
            let missing = count as usize - out.len();
            out.extend(all.iter().cycle().take(missing));
        }
        for &p in &out {
            self.mark(p);
        }
        Ok(out)
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn kind_of(state: State) -> Kind {
    match state {
        State::TimeWait => Kind::TimeWait,
        State::Listen => Kind::Listener,
        _ => Kind::Tcb,
    }
}

fn local_ip(s: &Scenario, v6: bool) -> Result<IpAddr, Error> {
    let text = if v6 { &s.system.ipv6 } else { &s.system.ipv4 };
    text.parse()
        .map_err(|_| Error::Scenario(format!("system address {text:?} is not an IP address")))
}

/// Expands the scenario into endpoints: singles first (their ports are reserved before any
/// generator runs), then generators in file order.
pub fn expand(s: &Scenario) -> Result<Vec<Ep>, Error> {
    let mut rng = Rng::new(s.seed);
    let mut out = Vec::new();
    let (dlo, dhi) = parse_range(&s.system.dynamic_ports, "dynamic_ports")?;
    let (dlo, dhi) = (
        u16::try_from(dlo).unwrap_or(u16::MAX),
        u16::try_from(dhi).unwrap_or(u16::MAX),
    );
    let mut tcp_ports = Ports {
        used: vec![false; 65536],
    };
    let mut udp_ports = Ports {
        used: vec![false; 65536],
    };

    // Listeners and UDP sockets were opened a few seconds after their process started.
    let opened = |pid: u32| {
        let start = s
            .processes
            .iter()
            .find(|p| p.pid == pid)
            .map_or(0, |p| p.started_secs);
        s.system.uptime_secs.saturating_sub(start + 3)
    };
    for l in &s.tcp.listeners {
        let local = parse_sock(&l.local)?;
        tcp_ports.mark(local.port());
        out.push(Ep {
            kind: Kind::Listener,
            state: State::Listen,
            local,
            remote: None,
            pid: Some(l.pid),
            kernel: l.kernel,
            afd: !l.kernel,
            age_secs: opened(l.pid),
        });
    }
    for e in &s.tcp.endpoints {
        let local = parse_sock(&e.local)?;
        let remote = e.remote.as_deref().map(parse_sock).transpose()?;
        check_remote(e.state, remote.is_some(), &e.local)?;
        tcp_ports.mark(local.port());
        let kind = kind_of(e.state);
        let afd = !e.kernel && e.pid.is_some() && (kind != Kind::TimeWait || e.socket_open);
        out.push(Ep {
            kind,
            state: e.state,
            local,
            remote,
            pid: e.pid,
            kernel: e.kernel,
            afd,
            age_secs: e.age_secs,
        });
    }
    for u in &s.udp.endpoints {
        let local = parse_sock(&u.local)?;
        udp_ports.mark(local.port());
        out.push(Ep {
            kind: Kind::Udp,
            state: State::Closed,
            local,
            remote: None,
            pid: Some(u.pid),
            kernel: u.kernel,
            afd: !u.kernel,
            age_secs: opened(u.pid),
        });
    }
    for b in &s.tcp.bulk {
        let cidr = b.remote.as_deref().map(parse_cidr).transpose()?;
        check_remote(b.state, cidr.is_some(), "a [[tcp.bulk]] generator")?;
        let v6 = cidr.as_ref().is_some_and(|c| c.base.is_ipv6());
        let ip = match &b.local {
            Some(t) => t
                .parse()
                .map_err(|_| Error::Scenario(format!("local {t:?} is not an IP address")))?,
            None => local_ip(s, v6)?,
        };
        let (lo, hi) = port_range(&b.local_ports, dlo, dhi)?;
        let shareable = cidr.is_some();
        let ports = tcp_ports.take(&mut rng, lo, hi, b.count, shareable)?;
        let (alo, ahi) = match &b.age_secs {
            Some(r) => parse_range(r, "age_secs")?,
            None => (0, 0),
        };
        let n_free = ports
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            .max(1) as u64;
        let shift = rng.next_u64();
        let kind = kind_of(b.state);
        for (i, port) in ports.into_iter().enumerate() {
            let i = i as u64;
            let remote = cidr.as_ref().map(|c| {
                let port = rng.range(u64::from(c.ports.0), u64::from(c.ports.1)) as u16;
                SocketAddr::new(c.host(shift % c.hosts + i / n_free + i * 7), port)
            });
            let afd = !b.kernel && b.pid.is_some() && (kind != Kind::TimeWait || b.socket_open);
            out.push(Ep {
                kind,
                state: b.state,
                local: SocketAddr::new(ip, port),
                remote,
                pid: b.pid,
                kernel: b.kernel,
                afd,
                age_secs: rng.range(alo, ahi),
            });
        }
    }
    for b in &s.udp.bulk {
        let ip = match &b.local {
            Some(t) => t
                .parse()
                .map_err(|_| Error::Scenario(format!("local {t:?} is not an IP address")))?,
            None => local_ip(s, b.ipv6)?,
        };
        let (lo, hi) = port_range(&b.local_ports, dlo, dhi)?;
        for port in udp_ports.take(&mut rng, lo, hi, b.count, false)? {
            let age = rng.range(0, opened(b.pid));
            out.push(Ep {
                kind: Kind::Udp,
                state: State::Closed,
                local: SocketAddr::new(ip, port),
                remote: None,
                pid: Some(b.pid),
                kernel: b.kernel,
                afd: !b.kernel,
                age_secs: age,
            });
        }
    }
    Ok(out)
}

fn check_remote(state: State, has_remote: bool, what: &str) -> Result<(), Error> {
    let wants = !matches!(state, State::Bound | State::Listen | State::Closed);
    if wants != has_remote {
        let m = if wants {
            "needs a remote address"
        } else {
            "must not have a remote address"
        };
        return Err(Error::Scenario(format!(
            "{what}: state {} {m}",
            state.name()
        )));
    }
    Ok(())
}

fn port_range(spec: &str, dlo: u16, dhi: u16) -> Result<(u16, u16), Error> {
    if spec == "dynamic" {
        return Ok((dlo, dhi));
    }
    let (lo, hi) = parse_range(spec, "local_ports")?;
    match (u16::try_from(lo), u16::try_from(hi)) {
        (Ok(lo), Ok(hi)) if lo > 0 => Ok((lo, hi)),
        _ => Err(Error::Scenario(format!(
            "local_ports {spec:?} is outside 1-65535"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(extra: &str) -> Scenario {
        let text = format!(
            "name = \"t\"\nseed = 7\n[system]\nbuild = 19041\nuptime_secs = 1000\nsystem_time_unix = 1700000000\n\
             [[process]]\npid = 4\nimage = \"System\"\n[[process]]\npid = 9\nimage = \"x.exe\"\n{extra}"
        );
        Scenario::from_toml(&text).unwrap()
    }

    #[test]
    fn bound_sockets_never_share_a_port_and_connections_wrap() {
        let s = scenario(
            "[[tcp.bulk]]\ncount = 16000\nstate = \"BOUND\"\npid = 9\n\
             [[tcp.bulk]]\ncount = 2000\nstate = \"TIME_WAIT\"\npid = 9\nremote = \"192.0.2.0/24:443\"\n",
        );
        let eps = expand(&s).unwrap();
        let bound: std::collections::BTreeSet<u16> = eps
            .iter()
            .filter(|e| e.state == State::Bound)
            .map(|e| e.local.port())
            .collect();
        assert_eq!(bound.len(), 16000);
        assert!(bound.iter().all(|p| (49152..=65535).contains(p)));
        // 384 free ports remain for TIME_WAIT; the rest reuse ports with distinct 4-tuples.
        let tuples: std::collections::BTreeSet<_> = eps
            .iter()
            .filter(|e| e.state == State::TimeWait)
            .map(|e| (e.local, e.remote))
            .collect();
        assert_eq!(tuples.len(), 2000);
        assert_eq!(expand(&s).unwrap(), eps, "same seed, same endpoints");
    }

    #[test]
    fn too_many_bound_sockets_is_an_error() {
        let s = scenario("[[tcp.bulk]]\ncount = 17000\nstate = \"BOUND\"\npid = 9\n");
        assert!(expand(&s).unwrap_err().to_string().contains("free ports"));
    }

    #[test]
    fn remote_populations_parse() {
        let c = parse_cidr("[2001:db8::/120]:1024-2048").unwrap();
        assert_eq!((c.hosts, c.ports), (256, (1024, 2048)));
        assert!(c.host(5).is_ipv6());
        assert!(parse_cidr("10.0.0.0/33:1").is_err());
        assert!(parse_cidr("10.0.0.0/8:0").is_err());
    }
}
