//! The in-memory machines the checks run against.

use portleak::kernel::EprocessOffsets;
use portleak::testing::MemTarget;
use portleak::{ModuleInfo, TargetClock};

/// FILETIME of 2026-11-21 12:00:00 UTC.
pub const NOW: u64 = 134_397_360_000_000_000;

pub const NT_BASE: u64 = 0xFFFF_F800_1000_0000;
pub const TCPIP_BASE: u64 = 0xFFFF_F800_2000_0000;
pub const AFD_BASE: u64 = 0xFFFF_F800_3000_0000;

pub const PS_HEAD: u64 = NT_BASE + 0x2000;
pub const PROCS: u64 = 0xFFFF_C000_0100_0000;
/// ImageFileName at 0x458 is 8- but not 16-aligned, so a 15-byte name read can straddle a page.
const EPROCESS_OFFSETS: EprocessOffsets = EprocessOffsets {
    unique_process_id: 0x2e8,
    active_process_links: 0x2f0,
    create_time: 0x300,
    exit_time: 0x308,
    image_file_name: 0x458,
    inherited_from: 0x3e0,
};

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
    t.types.insert(("nt".into(), "_EPROCESS".into()), 0x850);
    t.add_process_list(PS_HEAD, &EPROCESS_OFFSETS, &PROCESSES);
    for (_, _, ep) in PROCESSES {
        t.put_u64(ep + EPROCESS_OFFSETS.create_time, NOW - 3600 * 10_000_000);
    }
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
