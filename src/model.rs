//! What the walkers find: endpoints and their owners, in the terms netstat uses.

use serde::{Serialize, Serializer};
use std::fmt;

/// Serialises a kernel address as a `0x`-prefixed hex string: 64-bit addresses do not survive
/// JSON consumers that read numbers as doubles (JavaScript, jq).
pub fn hex<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:#x}"))
}
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        })
    }
}

/// TCP states as tcpip.sys numbers them (tcpip-afd-facts 1.3), plus BOUND, which netstat shows
/// for a TCB in CLOSED that holds a local port and has no peer (bound, never connected).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TcpState {
    Closed,
    Listening,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
    DeleteTcb,
    Bound,
}

impl TcpState {
    /// Maps tcpip's raw state; `None` for values no build uses (10, 11, > 13).
    pub fn from_raw(v: u32) -> Option<Self> {
        Some(match v {
            0 => Self::Closed,
            1 => Self::Listening,
            2 => Self::SynSent,
            3 => Self::SynReceived,
            4 => Self::Established,
            5 => Self::FinWait1,
            6 => Self::FinWait2,
            7 => Self::CloseWait,
            8 => Self::Closing,
            9 => Self::LastAck,
            12 => Self::TimeWait,
            13 => Self::DeleteTcb,
            _ => return None,
        })
    }

    /// The name netstat prints.
    pub fn name(self) -> &'static str {
        match self {
            Self::Closed => "CLOSED",
            Self::Listening => "LISTENING",
            Self::SynSent => "SYN_SENT",
            Self::SynReceived => "SYN_RECEIVED",
            Self::Established => "ESTABLISHED",
            Self::FinWait1 => "FIN_WAIT_1",
            Self::FinWait2 => "FIN_WAIT_2",
            Self::CloseWait => "CLOSE_WAIT",
            Self::Closing => "CLOSING",
            Self::LastAck => "LAST_ACK",
            Self::TimeWait => "TIME_WAIT",
            Self::DeleteTcb => "DELETE_TCB",
            Self::Bound => "BOUND",
        }
    }

    /// Parses a netstat name, case-insensitively, with or without underscores; the RFC 793 short
    /// forms (LISTEN, SYN_RCVD) that tcpip's own enum and Get-NetTCPConnection use are accepted.
    pub fn parse(s: &str) -> Option<Self> {
        let norm: String = s
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .collect::<String>()
            .to_ascii_uppercase();
        match norm.as_str() {
            "LISTEN" => return Some(Self::Listening),
            "SYNRCVD" => return Some(Self::SynReceived),
            _ => {}
        }
        ALL_STATES
            .iter()
            .copied()
            .find(|st| st.name().replace('_', "") == norm)
    }
}

pub const ALL_STATES: [TcpState; 13] = [
    TcpState::Listening,
    TcpState::SynSent,
    TcpState::SynReceived,
    TcpState::Established,
    TcpState::FinWait1,
    TcpState::FinWait2,
    TcpState::CloseWait,
    TcpState::Closing,
    TcpState::LastAck,
    TcpState::TimeWait,
    TcpState::DeleteTcb,
    TcpState::Bound,
    TcpState::Closed,
];

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The tcpip.sys (or afd.sys) object an endpoint was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// A TCP control block ("TcpE"/"TTcb").
    Tcb,
    /// A TIME_WAIT TCB ("TcTW").
    TimeWait,
    /// A TCP listener ("TcpL").
    Listener,
    /// A UDP endpoint ("UdpA").
    Udp,
}

/// Who holds an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Owner {
    /// A process (possibly exited but not yet freed).
    Process {
        pid: u64,
        image: String,
        #[serde(serialize_with = "hex")]
        eprocess: u64,
    },
    /// The System process (pid 4): a kernel-mode client such as a WSK driver.
    Kernel {
        #[serde(serialize_with = "hex")]
        eprocess: u64,
    },
    /// tcpip keeps no owner for this object (TIME_WAIT) and none could be inferred.
    Unattributed,
    /// The owner pointer did not lead to a process.
    Unknown {
        #[serde(serialize_with = "hex")]
        pointer: u64,
    },
}

impl Owner {
    pub fn pid(&self) -> Option<u64> {
        match self {
            Owner::Process { pid, .. } => Some(*pid),
            Owner::Kernel { .. } => Some(4),
            _ => None,
        }
    }
    pub fn image(&self) -> &str {
        match self {
            Owner::Process { image, .. } => image,
            Owner::Kernel { .. } => "System",
            Owner::Unattributed => "(no owner: TIME_WAIT)",
            Owner::Unknown { .. } => "(unknown owner)",
        }
    }
    pub fn is_kernel(&self) -> bool {
        matches!(self, Owner::Kernel { .. })
    }
}

/// One endpoint, as netstat would show it, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub protocol: Protocol,
    /// TCP state; `None` for UDP.
    pub state: Option<TcpState>,
    pub local_ip: Option<IpAddr>,
    pub local_port: u16,
    pub remote_ip: Option<IpAddr>,
    pub remote_port: Option<u16>,
    pub owner: Owner,
    /// How the owner was found: `tcb`, `afd`, `listener`, `none`.
    pub owner_source: &'static str,
    #[serde(serialize_with = "hex")]
    pub object: u64,
    pub kind: ObjectKind,
    pub pool_tag: String,
    /// FILETIME the object was created (TCB/listener/UDP) or entered TIME_WAIT (TcTW), if known.
    pub time: Option<u64>,
    /// The structure the walker reached it from: `partition-table`, `port-pool`.
    pub found_via: &'static str,
}

impl Endpoint {
    pub fn state_name(&self) -> &'static str {
        self.state.map_or("", TcpState::name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_parse() {
        for raw in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13] {
            let s = TcpState::from_raw(raw).unwrap();
            assert_eq!(TcpState::parse(s.name()), Some(s));
        }
        assert_eq!(TcpState::from_raw(10), None);
        assert_eq!(TcpState::parse("time_wait"), Some(TcpState::TimeWait));
        assert_eq!(TcpState::parse("listen"), Some(TcpState::Listening));
        assert_eq!(TcpState::parse("closewait"), Some(TcpState::CloseWait));
        assert_eq!(TcpState::parse("SYN_RCVD"), Some(TcpState::SynReceived));
        assert_eq!(TcpState::parse("FIN_WAIT1"), Some(TcpState::FinWait1));
        assert_eq!(TcpState::parse("nonsense"), None);
    }
}
