//! The kernel model: OS version, the machine's clock at capture, loaded modules and processes.
//!
//! Kernel types come from the target's symbols (`nt!_EPROCESS` through the kernel PDB offline, the
//! debugger's own symbols in ext/). When the kernel PDB is missing, the built-in fallback table of
//! the build is used and the report says so.

use crate::diag::Diagnostics;
use crate::target::{ModuleInfo, Target, TargetError, TargetExt};
use crate::walk::{is_kernel_ptr, walk_list, ListEnd};
use serde::Serialize;
use std::collections::HashMap;

/// KUSER_SHARED_DATA's fixed kernel address on x64 (dump-format-facts 1.8).
pub const KUSER_SHARED_DATA: u64 = 0xFFFF_F780_0000_0000;

/// Offsets in KUSER_SHARED_DATA that have not moved between 7601 and 26100 (dump-format-facts
/// 1.8, tcpip-afd-facts 1.10); used when the kernel PDB does not give them.
mod kuser {
    pub const TICK_COUNT_MULTIPLIER: u64 = 0x004;
    pub const INTERRUPT_TIME: u64 = 0x008;
    pub const SYSTEM_TIME: u64 = 0x014;
    pub const NT_BUILD_NUMBER: u64 = 0x260;
    pub const NT_MAJOR_VERSION: u64 = 0x26C;
    pub const NT_MINOR_VERSION: u64 = 0x270;
    pub const TICK_COUNT: u64 = 0x320;
    pub const NT_PRODUCT_TYPE: u64 = 0x264;
}

/// Most processes a machine can have before we call the list corrupt.
const MAX_PROCESSES: usize = 1 << 16;

/// OS version and where each part came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OsVersion {
    pub major: u32,
    pub minor: u32,
    pub build: u32,
    /// ntoskrnl's file version revision (e.g. 17514 of 6.1.7601.17514), when known.
    pub kernel_revision: Option<u16>,
    /// How the build was found: `kuser`, `kernel-file-version`, `target`.
    pub build_source: &'static str,
}

impl OsVersion {
    /// "NT 6.1" and "NT 6.0": Vista, 7, 2008 and 2008 R2, the systems KB2553549 is about.
    pub fn is_nt6_0_or_6_1(&self) -> bool {
        self.major == 6 && self.minor <= 1
    }

    /// Marketing name of the build, for the report header.
    pub fn product_name(&self, server: bool) -> &'static str {
        match (self.build, server) {
            (7600 | 7601, false) => "Windows 7",
            (7600 | 7601, true) => "Windows Server 2008 R2",
            (6000..=6003, false) => "Windows Vista",
            (6000..=6003, true) => "Windows Server 2008",
            (9200, false) => "Windows 8",
            (9200, true) => "Windows Server 2012",
            (9600, false) => "Windows 8.1",
            (9600, true) => "Windows Server 2012 R2",
            (14393, true) => "Windows Server 2016",
            (17763, true) => "Windows Server 2019",
            (20348, _) => "Windows Server 2022",
            (26100, true) => "Windows Server 2025",
            (22000.., false) => "Windows 11",
            (10240..=19045, false) => "Windows 10",
            _ => "Windows",
        }
    }
}

/// The machine's clock at capture.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Clock {
    /// FILETIME (100 ns since 1601 UTC) at capture.
    pub system_time: Option<u64>,
    /// Time since boot in 100 ns units (KUSER InterruptTime, else the target's own).
    pub uptime_100ns: Option<u64>,
    /// Clock ticks since boot (KUSER TickCountQuad) and the ms they amount to.
    pub tick_count: Option<u64>,
    pub tick_ms: Option<u64>,
    /// The dump header's (or debugger's) uptime, kept for the cross-check.
    pub target_uptime_100ns: Option<u64>,
    /// Product type from KUSER (1 workstation, 2 domain controller, 3 server).
    pub product_type: Option<u32>,
}

impl Clock {
    pub fn uptime_secs(&self) -> Option<f64> {
        self.uptime_100ns.map(|u| u as f64 / 1e7)
    }
    pub fn is_server(&self) -> bool {
        matches!(self.product_type, Some(2 | 3))
    }
}

/// A process as found in memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Process {
    #[serde(serialize_with = "crate::model::hex")]
    pub eprocess: u64,
    pub pid: u64,
    pub parent_pid: Option<u64>,
    pub image: String,
    pub create_time: Option<u64>,
    /// Non-zero for a process that has exited but whose object is still referenced.
    pub exit_time: Option<u64>,
    /// False when the process was found only through an endpoint's owner pointer, not on
    /// PsActiveProcessHead (typically an exited process whose sockets were never closed).
    pub on_active_list: bool,
}

/// Offsets of the _EPROCESS fields the engine reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EprocessOffsets {
    pub unique_process_id: u64,
    pub active_process_links: u64,
    pub create_time: u64,
    pub exit_time: u64,
    pub image_file_name: u64,
    pub inherited_from: u64,
}

/// Where kernel type offsets come from when the target's symbols lack them.
pub type NtFallback<'a> = &'a dyn Fn(&str, &str) -> Option<u64>;

impl EprocessOffsets {
    /// Resolves from the target's `nt!_EPROCESS`, falling back field by field to `fallback`.
    pub fn resolve(
        target: &dyn Target,
        fallback: NtFallback<'_>,
        diag: &mut Diagnostics,
    ) -> Result<Self, String> {
        let mut from_fallback = Vec::new();
        let mut get = |field: &str| -> Result<u64, String> {
            match target.field_offset("nt", "_EPROCESS", field) {
                Ok(v) => Ok(v),
                Err(e) => match fallback("_EPROCESS", field) {
                    Some(v) => {
                        from_fallback.push(field.to_string());
                        Ok(v)
                    }
                    None => Err(format!("{e}; and no built-in offset for this build")),
                },
            }
        };
        let o = Self {
            unique_process_id: get("UniqueProcessId")?,
            active_process_links: get("ActiveProcessLinks")?,
            create_time: get("CreateTime")?,
            exit_time: get("ExitTime")?,
            image_file_name: get("ImageFileName")?,
            inherited_from: get("InheritedFromUniqueProcessId")?,
        };
        if !from_fallback.is_empty() {
            diag.note(format!(
                "nt!_EPROCESS fields {} came from the built-in table for this build (no kernel type information)",
                from_fallback.join(", ")
            ));
        }
        Ok(o)
    }
}

/// The processes of the machine, indexed by EPROCESS address.
#[derive(Debug, Clone, Default)]
pub struct Processes {
    list: Vec<Process>,
    by_eprocess: HashMap<u64, usize>,
    offsets: Option<EprocessOffsets>,
}

impl Processes {
    /// Walks PsActiveProcessHead.
    pub fn walk(target: &dyn Target, offsets: EprocessOffsets, diag: &mut Diagnostics) -> Self {
        let mut me = Self {
            offsets: Some(offsets),
            ..Self::default()
        };
        let head = match target.symbol_address("nt", "PsActiveProcessHead") {
            Ok(h) => h,
            Err(e) => match target.process_list_head() {
                Some(h) => {
                    diag.note("process list head taken from the dump header (no nt!PsActiveProcessHead symbol)");
                    h
                }
                None => {
                    diag.warn(
                        "no-process-list",
                        format!("cannot find the process list: {e}"),
                    );
                    return me;
                }
            },
        };
        let (links, end) = walk_list(
            target,
            head,
            MAX_PROCESSES,
            "process list (PsActiveProcessHead)",
            diag,
        );
        if end == ListEnd::Interrupted {
            diag.warn("interrupted", "process list walk interrupted");
        }
        for link in links {
            let eprocess = link.wrapping_sub(offsets.active_process_links);
            match read_process(target, eprocess, &offsets) {
                Ok(mut p) => {
                    p.on_active_list = true;
                    me.insert(p);
                }
                Err(e) => diag.warn("process-unreadable", format!("EPROCESS {eprocess:#x}: {e}")),
            }
        }
        me
    }

    fn insert(&mut self, p: Process) {
        if self.by_eprocess.contains_key(&p.eprocess) {
            return;
        }
        self.by_eprocess.insert(p.eprocess, self.list.len());
        self.list.push(p);
    }

    /// The process at `eprocess`: from the active list, or read directly (an exited process still
    /// referenced by an endpoint). `None` when the pointer does not lead to a plausible EPROCESS.
    pub fn resolve(&mut self, target: &dyn Target, eprocess: u64) -> Option<&Process> {
        if let Some(&i) = self.by_eprocess.get(&eprocess) {
            return self.list.get(i);
        }
        let offsets = self.offsets?;
        if !is_kernel_ptr(eprocess, 8) {
            return None;
        }
        // KPROCESS.Header.Type is 3 (ProcessObject) for every EPROCESS (tcpip-afd-facts 1.9, GH).
        if target.read_u8(eprocess).ok()? != 3 {
            return None;
        }
        let p = read_process(target, eprocess, &offsets).ok()?;
        if p.pid > u64::from(u32::MAX) || p.pid % 4 != 0 {
            return None;
        }
        self.insert(p);
        self.by_eprocess
            .get(&eprocess)
            .and_then(|&i| self.list.get(i))
    }

    pub fn get(&self, eprocess: u64) -> Option<&Process> {
        self.by_eprocess
            .get(&eprocess)
            .and_then(|&i| self.list.get(i))
    }

    pub fn all(&self) -> &[Process] {
        &self.list
    }
}

fn read_process(
    target: &dyn Target,
    eprocess: u64,
    o: &EprocessOffsets,
) -> Result<Process, TargetError> {
    let pid = target.read_u64(eprocess + o.unique_process_id)?;
    let mut name = [0u8; 15];
    target.read_exact(eprocess + o.image_file_name, &mut name)?;
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    let image = String::from_utf8_lossy(&name[..end]).into_owned();
    let nonzero = |v: Result<u64, TargetError>| v.ok().filter(|&t| t != 0);
    Ok(Process {
        eprocess,
        pid,
        parent_pid: target.read_u64(eprocess + o.inherited_from).ok(),
        image,
        create_time: nonzero(target.read_u64(eprocess + o.create_time)),
        exit_time: nonzero(target.read_u64(eprocess + o.exit_time)),
        on_active_list: false,
    })
}

/// Reads a KSYSTEM_TIME (LowPart u32, High1Time i32, High2Time i32); the value is consistent when
/// both high parts agree (the writer updates High2, Low, High1 in that order).
fn read_ksystem_time(target: &dyn Target, va: u64) -> Result<u64, TargetError> {
    let low = target.read_u32(va)?;
    let high1 = target.read_u32(va + 4)?;
    let high2 = target.read_u32(va + 8)?;
    if high1 != high2 {
        return Err(TargetError::Other(format!(
            "KSYSTEM_TIME at {va:#x} was captured mid-update (High1Time {high1:#x} != High2Time {high2:#x})"
        )));
    }
    Ok(u64::from(high1) << 32 | u64::from(low))
}

/// Offset of a KUSER_SHARED_DATA field: the target's type information first, then the constant.
fn kuser_field(target: &dyn Target, field: &str, constant: u64) -> u64 {
    target
        .field_offset("nt", "_KUSER_SHARED_DATA", field)
        .unwrap_or(constant)
}

/// Reads the clock from KUSER_SHARED_DATA, cross-checked with the target's own figures.
pub fn read_clock(target: &dyn Target, diag: &mut Diagnostics) -> Clock {
    let base = KUSER_SHARED_DATA;
    let tc = target.clock();
    let mut clock = Clock {
        target_uptime_100ns: tc.uptime,
        ..Clock::default()
    };
    match read_ksystem_time(
        target,
        base + kuser_field(target, "SystemTime", kuser::SYSTEM_TIME),
    ) {
        Ok(t) if t != 0 => clock.system_time = Some(t),
        Ok(_) => diag.warn("clock", "KUSER_SHARED_DATA.SystemTime is zero"),
        Err(e) => diag.warn("clock", format!("KUSER_SHARED_DATA.SystemTime: {e}")),
    }
    if clock.system_time.is_none() {
        clock.system_time = tc.system_time;
        if tc.system_time.is_some() {
            diag.note("system time taken from the dump header (KUSER_SHARED_DATA unreadable)");
        }
    }
    match read_ksystem_time(
        target,
        base + kuser_field(target, "InterruptTime", kuser::INTERRUPT_TIME),
    ) {
        Ok(t) => clock.uptime_100ns = Some(t),
        Err(e) => diag.warn("clock", format!("KUSER_SHARED_DATA.InterruptTime: {e}")),
    }
    let ticks = target.read_u64(base + kuser_field(target, "TickCountQuad", kuser::TICK_COUNT));
    let mult = target
        .read_u32(base + kuser_field(target, "TickCountMultiplier", kuser::TICK_COUNT_MULTIPLIER));
    if let (Ok(ticks), Ok(mult)) = (ticks, mult) {
        clock.tick_count = Some(ticks);
        // GetTickCount64 = TickCountQuad * TickCountMultiplier >> 24 (dump-format-facts 1.8).
        clock.tick_ms = Some(((u128::from(ticks) * u128::from(mult)) >> 24) as u64);
    }
    if clock.uptime_100ns.is_none() {
        clock.uptime_100ns = tc.uptime.or(clock.tick_ms.map(|ms| ms * 10_000));
    }
    if let (Some(k), Some(h)) = (clock.uptime_100ns, tc.uptime) {
        // The header's SystemUpTime is taken a moment after KUSER's InterruptTime; more than a
        // minute apart means one of them is not what it claims.
        if k.abs_diff(h) > 60 * 10_000_000 {
            diag.warn(
                "clock",
                format!(
                    "uptime disagrees: KUSER_SHARED_DATA says {:.0} s, the dump header {:.0} s",
                    k as f64 / 1e7,
                    h as f64 / 1e7
                ),
            );
        }
    }
    clock.product_type = target
        .read_u32(base + kuser_field(target, "NtProductType", kuser::NT_PRODUCT_TYPE))
        .ok()
        .filter(|p| (1..=3).contains(p));
    clock
}

/// Finds the OS version from KUSER_SHARED_DATA, ntoskrnl's file version and the target.
pub fn read_version(
    target: &dyn Target,
    modules: &[ModuleInfo],
    diag: &mut Diagnostics,
) -> Option<OsVersion> {
    let base = KUSER_SHARED_DATA;
    let major = target
        .read_u32(base + kuser_field(target, "NtMajorVersion", kuser::NT_MAJOR_VERSION))
        .ok();
    let minor = target
        .read_u32(base + kuser_field(target, "NtMinorVersion", kuser::NT_MINOR_VERSION))
        .ok();
    let kernel = modules.iter().find(|m| m.name == "nt");
    let file_version = kernel.and_then(|m| m.file_version);
    let (major, minor) = match (major, minor, file_version) {
        (Some(a), Some(b), _) if (5..=10).contains(&a) => (a, b),
        (_, _, Some(v)) => (u32::from(v[0]), u32::from(v[1])),
        _ => {
            diag.warn("version", "OS version unknown: KUSER_SHARED_DATA and ntoskrnl's version resource are unreadable");
            return None;
        }
    };
    // NtBuildNumber exists from Windows 10 on; below that offset 0x260 is reserved (facts 1.10).
    let kuser_build = if major >= 10 {
        target
            .read_u32(base + kuser_field(target, "NtBuildNumber", kuser::NT_BUILD_NUMBER))
            .ok()
            .map(|b| b & 0x0FFF_FFFF)
            .filter(|&b| b >= 10240)
    } else {
        None
    };
    let (build, source) = if let Some(b) = kuser_build {
        (b, "kuser")
    } else if let Some(v) = file_version {
        (u32::from(v[2]), "kernel-file-version")
    } else if let Some(b) = target.build_number() {
        (b, "target")
    } else {
        diag.warn("version", "OS build unknown");
        return None;
    };
    Some(OsVersion {
        major,
        minor,
        build,
        kernel_revision: file_version.map(|v| v[3]),
        build_source: source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemTarget;

    fn put_ksystem_time(t: &mut MemTarget, va: u64, v: u64) {
        t.put_u32(va, v as u32);
        t.put_u32(va + 4, (v >> 32) as u32);
        t.put_u32(va + 8, (v >> 32) as u32);
    }

    #[test]
    fn clock_from_kuser_with_header_cross_check() {
        let mut t = MemTarget::new();
        let uptime = 43_225_197u64 * 10_000_000;
        put_ksystem_time(&mut t, KUSER_SHARED_DATA + 0x8, uptime);
        put_ksystem_time(&mut t, KUSER_SHARED_DATA + 0x14, 0x01D0_0000_0000_0000);
        t.put_u32(KUSER_SHARED_DATA + 0x4, 0x0FA0_0000);
        t.put_u64(KUSER_SHARED_DATA + 0x320, uptime / 156_250);
        t.clock.uptime = Some(uptime + 5_000_000);
        let mut d = Diagnostics::new();
        let c = read_clock(&t, &mut d);
        assert_eq!(c.uptime_100ns, Some(uptime));
        assert_eq!(c.system_time, Some(0x01D0_0000_0000_0000));
        assert_eq!(c.tick_ms, Some(43_225_197_000));
        assert!(d.is_empty(), "{:?}", d.groups());
        t.clock.uptime = Some(uptime / 2);
        let mut d = Diagnostics::new();
        read_clock(&t, &mut d);
        assert_eq!(d.count("clock"), 1);
    }

    /// The constants are needed before the build is known; they must equal every built-in nt
    /// table's KUSER_SHARED_DATA offsets, which cover 7600-26100.
    #[test]
    fn kuser_constants_match_every_builtin_table() {
        for t in symbols::layouts::nt_tables().unwrap() {
            let k = &t.kuser;
            assert_eq!(k.address, KUSER_SHARED_DATA, "{}", t.id);
            for (name, constant, offset) in [
                (
                    "TickCountMultiplier",
                    kuser::TICK_COUNT_MULTIPLIER,
                    &k.tick_count_multiplier,
                ),
                ("InterruptTime", kuser::INTERRUPT_TIME, &k.interrupt_time),
                ("SystemTime", kuser::SYSTEM_TIME, &k.system_time),
                ("NtProductType", kuser::NT_PRODUCT_TYPE, &k.nt_product_type),
                (
                    "NtMajorVersion",
                    kuser::NT_MAJOR_VERSION,
                    &k.nt_major_version,
                ),
                (
                    "NtMinorVersion",
                    kuser::NT_MINOR_VERSION,
                    &k.nt_minor_version,
                ),
                ("TickCountQuad", kuser::TICK_COUNT, &k.tick_count_quad),
            ] {
                assert_eq!(constant, u64::from(offset.preferred()), "{} {name}", t.id);
            }
            if let Some(b) = &k.nt_build_number {
                assert_eq!(kuser::NT_BUILD_NUMBER, u64::from(b.preferred()), "{}", t.id);
            }
        }
    }

    #[test]
    fn torn_ksystem_time_is_rejected() {
        let mut t = MemTarget::new();
        t.put_u32(KUSER_SHARED_DATA + 0x8, 1);
        t.put_u32(KUSER_SHARED_DATA + 0xC, 2);
        t.put_u32(KUSER_SHARED_DATA + 0x10, 3);
        assert!(read_ksystem_time(&t, KUSER_SHARED_DATA + 0x8).is_err());
    }

    #[test]
    fn version_on_7601_comes_from_the_kernel_file_version() {
        let mut t = MemTarget::new();
        t.put_u32(KUSER_SHARED_DATA + 0x26C, 6);
        t.put_u32(KUSER_SHARED_DATA + 0x270, 1);
        t.put_u32(KUSER_SHARED_DATA + 0x260, 0xdead);
        let nt = ModuleInfo {
            name: "nt".into(),
            file_version: Some([6, 1, 7601, 17514]),
            ..Default::default()
        };
        let mut d = Diagnostics::new();
        let v = read_version(&t, &[nt], &mut d).unwrap();
        assert_eq!(
            (v.major, v.minor, v.build, v.build_source),
            (6, 1, 7601, "kernel-file-version")
        );
        assert!(v.is_nt6_0_or_6_1());
        assert_eq!(v.product_name(true), "Windows Server 2008 R2");
    }

    #[test]
    fn version_on_win10_comes_from_kuser() {
        let mut t = MemTarget::new();
        t.put_u32(KUSER_SHARED_DATA + 0x26C, 10);
        t.put_u32(KUSER_SHARED_DATA + 0x270, 0);
        t.put_u32(KUSER_SHARED_DATA + 0x260, 0xF000_0000 | 19041);
        let mut d = Diagnostics::new();
        let v = read_version(&t, &[], &mut d).unwrap();
        assert_eq!((v.build, v.build_source), (19041, "kuser"));
    }
}
