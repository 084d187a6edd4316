//! The in-memory machines the checks run against.

use portleak::testing::MemTarget;
use portleak::{ModuleInfo, TargetClock};

/// FILETIME of 2026-11-21 12:00:00 UTC.
pub const NOW: u64 = 134_397_360_000_000_000;

pub const NT_BASE: u64 = 0xFFFF_F800_1000_0000;
pub const TCPIP_BASE: u64 = 0xFFFF_F800_2000_0000;
pub const AFD_BASE: u64 = 0xFFFF_F800_3000_0000;

pub const PS_HEAD: u64 = NT_BASE + 0x2000;
pub const PROCS: u64 = 0xFFFF_C000_0100_0000;
const PID_OFF: u64 = 0x2e8;
const LINKS_OFF: u64 = 0x2f0;
// 8- but not 16-aligned, so a 15-byte ImageFileName read can straddle a page.
const NAME_OFF: u64 = 0x458;

/// Processes of [`with_processes`]: names with printf conversions and DML metacharacters. The
/// third one's EPROCESS sits so that ImageFileName crosses a page boundary.
pub const PROCESSES: [(u64, &str, u64); 3] = [
    (4, "System", PROCS),
    (1234, "100%s<&\">%n.exe", PROCS + 0x1000),
    (88, "split.exe", PROCS + 0x3000 - 0x460),
];

/// [`bare_kernel`] plus nt!_EPROCESS type information and a process list of [`PROCESSES`].
pub fn with_processes() -> MemTarget {
    let mut t = bare_kernel();
    t.add_symbol("nt", "PsActiveProcessHead", PS_HEAD);
    t.types.insert(("nt".into(), "_EPROCESS".into()), 0x850);
    for (f, off) in [
        ("UniqueProcessId", PID_OFF),
        ("ActiveProcessLinks", LINKS_OFF),
        ("CreateTime", 0x300),
        ("ExitTime", 0x308),
        ("ImageFileName", NAME_OFF),
        ("InheritedFromUniqueProcessId", 0x3e0),
    ] {
        t.add_field("nt", "_EPROCESS", f, off);
    }
    let links: Vec<u64> = PROCESSES.iter().map(|p| p.2 + LINKS_OFF).collect();
    for (i, (pid, name, ep)) in PROCESSES.iter().enumerate() {
        // KPROCESS.Header.Type = ProcessObject (3), which the engine checks.
        t.put(*ep, &[3]);
        t.put_u64(ep + PID_OFF, *pid);
        t.put(ep + NAME_OFF, name.as_bytes());
        t.put(ep + NAME_OFF + name.len() as u64, &[0]);
        t.put_u64(ep + 0x300, NOW - 3600 * 10_000_000);
        t.put_u64(ep + LINKS_OFF, links.get(i + 1).copied().unwrap_or(PS_HEAD));
        t.put_u64(
            ep + LINKS_OFF + 8,
            if i == 0 { PS_HEAD } else { links[i - 1] },
        );
    }
    t.put_u64(PS_HEAD, links[0]);
    t.put_u64(PS_HEAD + 8, links[links.len() - 1]);
    t
}

/// A kernel with nt, tcpip and afd loaded, a clock and a build number, but no endpoint data.
pub fn bare_kernel() -> MemTarget {
    let mut t = MemTarget::new();
    t.modules = vec![
        module(
            "nt",
            "ntoskrnl.exe",
            NT_BASE,
            0x0104_5000,
            [10, 0, 17763, 1879],
        ),
        module(
            "tcpip",
            "tcpip.sys",
            TCPIP_BASE,
            0x0031_0000,
            [10, 0, 17763, 1852],
        ),
        module(
            "afd",
            "afd.sys",
            AFD_BASE,
            0x0009_8000,
            [10, 0, 17763, 1790],
        ),
    ];
    t.clock = TargetClock {
        system_time: Some(NOW),
        uptime: Some(36 * 3600 * 10_000_000),
    };
    t.build = Some(17763);
    // The PE headers, so reads of module bases succeed.
    for m in &t.modules.clone() {
        t.put(m.base, b"MZ");
    }
    t
}

fn module(name: &str, image: &str, base: u64, size: u32, v: [u16; 4]) -> ModuleInfo {
    ModuleInfo {
        name: name.into(),
        image_name: image.into(),
        base,
        size,
        timestamp: 0x5C2F_0000 + size / 0x1000,
        file_version: Some(v),
    }
}
