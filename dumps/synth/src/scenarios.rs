//! The scenario files of tests/scenarios/, embedded so the CLI and tests need no checkout.

macro_rules! scenario {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../../../tests/scenarios/", $name, ".toml")),
        )
    };
}

static ALL: &[(&str, &str)] = &[
    scenario!("a-2008r2-497-day"),
    scenario!("b-2019-bound-leak"),
    scenario!("c-2022-kernel-wsk"),
    scenario!("d-win10-close-wait"),
    scenario!("e-win11-healthy"),
    scenario!("f-win10-dual-stack"),
];

/// Every embedded scenario as (name, TOML text), in file-name order.
pub fn all() -> &'static [(&'static str, &'static str)] {
    ALL
}

/// The TOML text of one embedded scenario.
pub fn get(name: &str) -> Option<&'static str> {
    ALL.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The benchmark scenario: a server with `ram_gib` GiB of RAM (zero filler pages written as file
/// holes) holding 100,000+ endpoints across every table (BOUND, TIME_WAIT, ESTABLISHED, SYN_RCVD,
/// CLOSE_WAIT, UDP). Shared by the builder's and the engine's benchmarks.
pub fn scale(ram_gib: u64) -> String {
    format!(
        r#"
name = "scale-100k"
description = "64 GiB server with 100,000+ endpoints (bench)"
seed = 100000

[system]
build = 19041
uptime_secs = 864000
system_time_unix = 1705000000
processors = 16
ram_mib = {ram}
filler = true
dump_type = 5
partition_count = 16
ipv4 = "10.9.0.5"

[hash]
tcb = 8192
time_wait = 8192
syn = 256

[[process]]
pid = 4
image = "System"
[[process]]
pid = 700
image = "svchost.exe"
[[process]]
pid = 2100
image = "w3wp.exe"
[[process]]
pid = 2200
image = "java.exe"

[[tcp.listener]]
pid = 4
local = "0.0.0.0:445"
[[tcp.listener]]
pid = 2100
local = "0.0.0.0:443"

[[tcp.bulk]]
count = 15000
state = "BOUND"
pid = 2200
[[tcp.bulk]]
count = 40000
state = "TIME_WAIT"
pid = 2200
remote = "120.55.0.0/16:443"
age_secs = "0-86400"
[[tcp.bulk]]
count = 35000
state = "ESTABLISHED"
pid = 2100
remote = "198.51.0.0/16:1024-65535"
local = "10.9.0.5"
local_ports = "443"
age_secs = "1-3600"
[[tcp.bulk]]
count = 2000
state = "SYN_RCVD"
pid = 2100
remote = "203.0.0.0/16:1024-65535"
local = "10.9.0.5"
local_ports = "443"
[[tcp.bulk]]
count = 3000
state = "CLOSE_WAIT"
pid = 2200
remote = "120.55.0.0/16:443"

[[udp.bulk]]
count = 5000
pid = 700
local_ports = "1024-40000"
"#,
        ram = ram_gib * 1024
    )
}
