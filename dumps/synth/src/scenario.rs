//! The scenario file: what the synthetic machine ran and held when it "crashed".
//!
//! A scenario is TOML (see tests/scenarios/README.md and docs/SCENARIOS.md). Individual endpoints
//! are listed one by one; bulk populations (15,000 TIME_WAIT entries and the like) come from
//! generators that the builder expands deterministically from the scenario's seed.

use serde::{Deserialize, Serialize};

use crate::Error;

/// A parsed scenario. Build one with [`Scenario::from_toml`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Scenario {
    /// Short machine-friendly name, used for file names (`<name>.dmp`).
    pub name: String,
    /// One sentence on what the dump shows.
    #[serde(default)]
    pub description: String,
    /// Seed of every generator; the same scenario and seed give a byte-identical dump.
    #[serde(default)]
    pub seed: u64,
    pub system: System,
    #[serde(default)]
    pub hash: HashSizes,
    #[serde(default, rename = "process")]
    pub processes: Vec<Process>,
    #[serde(default)]
    pub tcp: Tcp,
    #[serde(default)]
    pub udp: Udp,
    /// What the scenario is meant to show; a test compares it with the facts derived from what
    /// was actually placed.
    #[serde(default)]
    pub expect: Expect,
}

/// The machine: OS build, clock and dump shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct System {
    /// Kernel build number; one of the builds with fake modules (7601, 17763, 19041, 20348, 22621).
    pub build: u32,
    /// Seconds since boot at the time of the dump.
    pub uptime_secs: u64,
    /// Wall clock at the time of the dump, seconds since 1970-01-01 UTC.
    pub system_time_unix: u64,
    #[serde(default = "default_processors")]
    pub processors: u32,
    /// Physical memory size; pages beyond what the builder uses are present-but-zero filler
    /// (file holes) when `filler` is set, else absent from the dump.
    #[serde(default = "default_ram")]
    pub ram_mib: u64,
    /// Mark all RAM as present (zero pages written as holes), as a full/active dump would.
    #[serde(default)]
    pub filler: bool,
    /// 5 (bitmap kernel dump, default), 1 (full, run-based), 6 (active), 8 (RDMP kernel).
    #[serde(default = "default_dump_type")]
    pub dump_type: u32,
    /// tcpip!PartitionCount (1..=64).
    #[serde(default = "default_partitions")]
    pub partition_count: u32,
    /// Dynamic (ephemeral) port range "start-end". Kept for the truth only: Windows keeps it
    /// nowhere a public source locates (MEMORY-MODEL.md, "Dynamic port range").
    #[serde(default = "default_dynamic")]
    pub dynamic_ports: String,
    /// NtProductType: 1 workstation, 3 server.
    #[serde(default = "default_product")]
    pub product_type: u32,
    /// Local IPv4 address used where an endpoint names none.
    #[serde(default = "default_ip4")]
    pub ipv4: String,
    /// Local IPv6 address used where an endpoint names none.
    #[serde(default = "default_ip6")]
    pub ipv6: String,
}

fn default_processors() -> u32 {
    4
}
fn default_ram() -> u64 {
    1024
}
fn default_dump_type() -> u32 {
    5
}
fn default_partitions() -> u32 {
    4
}
fn default_dynamic() -> String {
    "49152-65535".into()
}
fn default_product() -> u32 {
    3
}
fn default_ip4() -> String {
    "10.0.0.5".into()
}
fn default_ip6() -> String {
    "fd00::5".into()
}

/// Bucket counts of each partition's three hash tables. Past 128 a table uses the two-level
/// directory (tcpip-afd-facts.md 2.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HashSizes {
    #[serde(default = "default_buckets")]
    pub syn: u32,
    #[serde(default = "default_buckets")]
    pub tcb: u32,
    #[serde(default = "default_buckets")]
    pub time_wait: u32,
}

fn default_buckets() -> u32 {
    128
}

impl Default for HashSizes {
    fn default() -> Self {
        HashSizes {
            syn: 128,
            tcb: 128,
            time_wait: 128,
        }
    }
}

/// One process on PsActiveProcessHead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Process {
    pub pid: u32,
    pub image: String,
    #[serde(default)]
    pub ppid: u32,
    /// Seconds after boot the process started.
    #[serde(default)]
    pub started_secs: u64,
    /// Seconds after boot the process exited (it still holds endpoints), if it did.
    #[serde(default)]
    pub exited_secs: Option<u64>,
}

/// TCP endpoints: single entries, listeners and generators.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Tcp {
    #[serde(default, rename = "listener")]
    pub listeners: Vec<Listener>,
    #[serde(default, rename = "endpoint")]
    pub endpoints: Vec<TcpEndpoint>,
    #[serde(default)]
    pub bulk: Vec<TcpBulk>,
}

/// UDP endpoints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Udp {
    #[serde(default, rename = "endpoint")]
    pub endpoints: Vec<UdpEndpoint>,
    #[serde(default)]
    pub bulk: Vec<UdpBulk>,
}

/// A TCP listener. `local` is `ip:port` or `[ip6]:port`; `0.0.0.0:p` / `[::]:p` is a wildcard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Listener {
    pub pid: u32,
    pub local: String,
    /// Opened by a kernel-mode client (WSK): no AFD endpoint.
    #[serde(default)]
    pub kernel: bool,
}

/// A UDP endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct UdpEndpoint {
    pub pid: u32,
    pub local: String,
    #[serde(default)]
    pub kernel: bool,
}

/// One TCP connection (TCB or TIME_WAIT entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TcpEndpoint {
    /// Owner; TIME_WAIT entries have no owner field in memory, this pid then only decides whether
    /// an AFD endpoint (socket still open) attributes it.
    #[serde(default)]
    pub pid: Option<u32>,
    pub state: State,
    pub local: String,
    /// Absent for BOUND (CLOSED with a local port) and LISTEN.
    #[serde(default)]
    pub remote: Option<String>,
    /// Seconds the entry has been in its state (TIME_WAIT timestamp = dump time - age).
    #[serde(default)]
    pub age_secs: u64,
    #[serde(default)]
    pub kernel: bool,
    /// For TIME_WAIT: the socket is still open, so an AFD endpoint of `pid` holds the port.
    #[serde(default)]
    pub socket_open: bool,
}

/// A generator of `count` TCP entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TcpBulk {
    pub count: u32,
    pub state: State,
    #[serde(default)]
    pub pid: Option<u32>,
    /// Remote "cidr:port", e.g. "120.55.35.0/24:443" or "[2001:db8::/112]:443"; absent for BOUND.
    #[serde(default)]
    pub remote: Option<String>,
    /// Local address; default: the system address of the remote's family.
    #[serde(default)]
    pub local: Option<String>,
    /// "dynamic" (the dynamic range), "lo-hi", or a single port number as a string.
    #[serde(default = "default_local_ports")]
    pub local_ports: String,
    /// Age range "lo-hi" in seconds; each entry gets a value spread over it.
    #[serde(default)]
    pub age_secs: Option<String>,
    #[serde(default)]
    pub kernel: bool,
    #[serde(default)]
    pub socket_open: bool,
}

fn default_local_ports() -> String {
    "dynamic".into()
}

/// A generator of `count` UDP endpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct UdpBulk {
    pub count: u32,
    pub pid: u32,
    #[serde(default)]
    pub local: Option<String>,
    #[serde(default = "default_local_ports")]
    pub local_ports: String,
    #[serde(default)]
    pub ipv6: bool,
    #[serde(default)]
    pub kernel: bool,
}

/// TCP states as netstat names them; `Bound` is CLOSED with a local port and no remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum State {
    Closed,
    Bound,
    Listen,
    SynSent,
    SynRcvd,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
    DeleteTcb,
}

impl State {
    /// The tcpip state number (tcpip-afd-facts.md 1.3).
    pub fn code(self) -> u32 {
        match self {
            State::Closed | State::Bound => 0,
            State::Listen => 1,
            State::SynSent => 2,
            State::SynRcvd => 3,
            State::Established => 4,
            State::FinWait1 => 5,
            State::FinWait2 => 6,
            State::CloseWait => 7,
            State::Closing => 8,
            State::LastAck => 9,
            State::TimeWait => 12,
            State::DeleteTcb => 13,
        }
    }

    /// Name as in the truth and in netstat.
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::Bound => "BOUND",
            State::Listen => "LISTEN",
            State::SynSent => "SYN_SENT",
            State::SynRcvd => "SYN_RCVD",
            State::Established => "ESTABLISHED",
            State::FinWait1 => "FIN_WAIT1",
            State::FinWait2 => "FIN_WAIT2",
            State::CloseWait => "CLOSE_WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST_ACK",
            State::TimeWait => "TIME_WAIT",
            State::DeleteTcb => "DELETE_TCB",
        }
    }
}

/// The verdicts the scenario means to produce.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Expect {
    /// "exhausted", "at_risk" or "healthy".
    #[serde(default)]
    pub range: Option<String>,
    #[serde(default)]
    pub bug_497: Option<bool>,
    #[serde(default)]
    pub kernel_owned: Option<bool>,
    /// Pid expected to hold the most endpoints, if the scenario is about one process.
    #[serde(default)]
    pub top_pid: Option<u32>,
}

impl Scenario {
    /// Parses a scenario and checks what serde cannot: build known, ranges well-formed, pids
    /// unique and every endpoint's owner listed.
    pub fn from_toml(text: &str) -> Result<Scenario, Error> {
        let s: Scenario = toml::from_str(text).map_err(|e| Error::Scenario(e.to_string()))?;
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::Scenario(format!("scenario {:?}: {m}", self.name)));
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return bad("the name must be non-empty ASCII letters, digits, '-' or '_'".into());
        }
        if !(1..=64).contains(&self.system.partition_count) {
            return bad(format!(
                "partition_count {} is outside 1..=64",
                self.system.partition_count
            ));
        }
        if ![1, 5, 6, 8].contains(&self.system.dump_type) {
            return bad(format!(
                "dump_type {} is not one of 1, 5, 6, 8",
                self.system.dump_type
            ));
        }
        if !(64..=1 << 22).contains(&self.system.ram_mib) {
            return bad(format!(
                "ram_mib {} is outside 64 MiB..4 TiB",
                self.system.ram_mib
            ));
        }
        let (lo, hi) = crate::gen::parse_range(&self.system.dynamic_ports, "dynamic_ports")?;
        if lo == 0 || hi > 65535 {
            return bad(format!("dynamic_ports {lo}-{hi} is outside 1-65535"));
        }
        for t in [self.hash.syn, self.hash.tcb, self.hash.time_wait] {
            if !(1..=65536).contains(&t) {
                return bad(format!("hash table size {t} is outside 1..=65536"));
            }
        }
        let mut pids = std::collections::BTreeSet::new();
        for p in &self.processes {
            if !pids.insert(p.pid) {
                return bad(format!("pid {} is listed twice", p.pid));
            }
            if p.image.is_empty() {
                return bad(format!("pid {} has an empty image name", p.pid));
            }
        }
        if !pids.contains(&4) {
            return bad("the System process (pid 4) is missing".into());
        }
        let owners = self
            .tcp
            .listeners
            .iter()
            .map(|l| Some(l.pid))
            .chain(self.tcp.endpoints.iter().map(|e| e.pid))
            .chain(self.tcp.bulk.iter().map(|b| b.pid))
            .chain(self.udp.endpoints.iter().map(|u| Some(u.pid)))
            .chain(self.udp.bulk.iter().map(|u| Some(u.pid)));
        for pid in owners.flatten() {
            if !pids.contains(&pid) {
                return bad(format!(
                    "an endpoint names pid {pid}, which no [[process]] declares"
                ));
            }
        }
        Ok(())
    }
}
