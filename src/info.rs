//! `portleak info DUMP [--json]`: what a dump is, from its headers alone (no symbols needed).
//! JSON keys are documented in docs/DUMPS.md; bump [`SCHEMA_VERSION`] on incompatible changes.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use serde::Serialize;

/// Version of the `--json` output layout.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// The kernel dump (MEMORY.DMP).
    pub dump: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The `--json` document. 64-bit addresses are hex strings: JSON numbers lose precision past
/// 2^53 in most consumers.
#[derive(Debug, Serialize)]
pub struct Info {
    pub schema_version: u32,
    pub path: String,
    pub file_size: u64,
    pub dump_type: u32,
    pub dump_type_name: &'static str,
    pub machine: String,
    pub major_version: u32,
    pub build: u32,
    pub processors: u32,
    pub dtb: String,
    pub ps_active_process_head: String,
    pub ps_loaded_module_list: String,
    pub kd_debugger_data_block: String,
    pub pfn_database: String,
    pub bugcheck_code: String,
    pub bugcheck_parameters: [String; 4],
    pub system_time: String,
    pub system_time_filetime: u64,
    pub system_uptime: String,
    pub system_uptime_100ns: u64,
    pub physical_pages: u64,
    pub physical_memory_bytes: u64,
    pub first_page_offset: u64,
    pub required_dump_space: u64,
    pub product_type: u32,
    pub suite_mask: String,
    pub attributes: String,
    pub boot_id: u32,
    pub comment: String,
    pub warnings: Vec<String>,
}

fn hex(v: u64) -> String {
    format!("{v:#018x}")
}

/// Converts days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// FILETIME (100 ns since 1601-01-01 UTC) as ISO 8601 UTC, e.g. `2024-03-01T12:34:56Z`
/// (fractions of a second are shown when present).
pub fn filetime_to_iso8601(ft: u64) -> String {
    const SECS_1601_TO_1970: i64 = 11_644_473_600;
    let secs = (ft / 10_000_000) as i64 - SECS_1601_TO_1970;
    let frac = ft % 10_000_000;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem / 60 % 60, rem % 60);
    if frac == 0 {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{frac:07}Z")
    }
}

/// Byte counts as people read them: `512 B`, `28 KiB`, `1.5 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 || v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Uptime in 100 ns units as `Nd HH:MM:SS`.
pub fn uptime_text(t: u64) -> String {
    let s = t / 10_000_000;
    format!(
        "{}d {:02}:{:02}:{:02}",
        s / 86_400,
        s / 3600 % 24,
        s / 60 % 60,
        s % 60
    )
}

impl Info {
    /// Gathers the facts of an opened dump.
    pub fn of(dump: &dumps::Dump, path: &str) -> Self {
        let h = dump.header();
        let machine = match h.machine_image_type {
            0x8664 => "x64".to_string(),
            m => format!("{m:#06x}"),
        };
        Info {
            schema_version: SCHEMA_VERSION,
            path: path.to_string(),
            file_size: dump.file_len(),
            dump_type: h.dump_type.value(),
            dump_type_name: h.dump_type.name(),
            machine,
            major_version: h.major_version,
            build: h.minor_version,
            processors: h.number_processors,
            dtb: hex(h.directory_table_base),
            ps_active_process_head: hex(h.ps_active_process_head),
            ps_loaded_module_list: hex(h.ps_loaded_module_list),
            kd_debugger_data_block: hex(h.kd_debugger_data_block),
            pfn_database: hex(h.pfn_database),
            bugcheck_code: format!("{:#010x}", h.bugcheck_code),
            bugcheck_parameters: h.bugcheck_parameters.map(hex),
            system_time: filetime_to_iso8601(h.system_time),
            system_time_filetime: h.system_time,
            system_uptime: uptime_text(h.system_uptime),
            system_uptime_100ns: h.system_uptime,
            physical_pages: dump.page_count(),
            physical_memory_bytes: dump.page_count().saturating_mul(dumps::PAGE_SIZE),
            first_page_offset: dump.layout().first_page_offset,
            required_dump_space: h.required_dump_space,
            product_type: h.product_type,
            suite_mask: format!("{:#x}", h.suite_mask),
            attributes: format!("{:#x}", h.attributes),
            boot_id: h.boot_id,
            comment: h.comment.clone(),
            warnings: dump.warnings().to_vec(),
        }
    }

    /// The text form: one `key: value` line per fact.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let mut line = |k: &str, v: &dyn std::fmt::Display| s.push_str(&format!("{k:<24}{v}\n"));
        line("Dump", &self.path);
        line(
            "Dump type",
            &format_args!("{} ({})", self.dump_type, self.dump_type_name),
        );
        line("Machine", &self.machine);
        line(
            "Build",
            &format_args!("{} (major version {:#x})", self.build, self.major_version),
        );
        line("Processors", &self.processors);
        line("DirectoryTableBase", &self.dtb);
        line("PsActiveProcessHead", &self.ps_active_process_head);
        line("PsLoadedModuleList", &self.ps_loaded_module_list);
        line("KdDebuggerDataBlock", &self.kd_debugger_data_block);
        line(
            "Bugcheck",
            &format_args!(
                "{} ({})",
                self.bugcheck_code,
                self.bugcheck_parameters.join(", ")
            ),
        );
        line("System time", &self.system_time);
        line("System uptime", &self.system_uptime);
        line(
            "Physical pages",
            &format_args!(
                "{} ({})",
                self.physical_pages,
                human_bytes(self.physical_memory_bytes)
            ),
        );
        line(
            "File size",
            &format_args!("{} bytes ({})", self.file_size, human_bytes(self.file_size)),
        );
        if !self.comment.is_empty() {
            line("Comment", &self.comment);
        }
        for w in &self.warnings {
            line("Warning", w);
        }
        s
    }
}

/// Runs `portleak info`.
pub fn run(args: &InfoArgs) -> Result<()> {
    let dump = dumps::Dump::open(&args.dump)
        .with_context(|| format!("cannot read {}", args.dump.display()))?;
    let info = Info::of(&dump, &args.dump.display().to_string());
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &info)?;
        writeln!(out)?;
    } else {
        out.write_all(info.text().as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filetime_conversion() {
        assert_eq!(filetime_to_iso8601(0), "1601-01-01T00:00:00Z");
        assert_eq!(
            filetime_to_iso8601(116_444_736_000_000_000),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            filetime_to_iso8601(133_537_248_000_000_000),
            "2024-03-01T00:00:00Z"
        );
        // 2000-02-29 (leap day of a leap century) 23:59:59.5
        assert_eq!(
            filetime_to_iso8601(125_963_423_995_000_000),
            "2000-02-29T23:59:59.5000000Z"
        );
        // The largest FILETIME must not overflow: 1601 + 2^64 * 100 ns is in May of year 60056.
        assert!(filetime_to_iso8601(u64::MAX).starts_with("60056-05-"));
        assert_eq!(
            uptime_text(((3 * 86_400) + 4 * 3600 + 5 * 60 + 6) * 10_000_000),
            "3d 04:05:06"
        );
    }

    #[test]
    fn json_of_a_generated_dump_has_every_documented_key() {
        use dumps::synth::{write_dump, DumpKind, DumpSpec, Memory, PageTables};
        let mut mem = Memory::new();
        let pt = PageTables::new(&mut mem);
        let path = std::env::temp_dir().join(format!("portleak-info-{}.dmp", std::process::id()));
        let spec = DumpSpec {
            kind: DumpKind::BitmapKernel,
            dtb: pt.pml4.u64(),
            bugcheck_code: 0x161,
            bugcheck_params: [0, 0, 0xFFFF_F805_1234_5678, 0],
            system_time: 133_537_248_000_000_000 + 12_345_678,
            system_uptime: 90_061 * 10_000_000,
            comment: "live dump".into(),
            ..DumpSpec::default()
        };
        write_dump(&path, &mem, &spec).unwrap();
        let dump = dumps::Dump::open(&path).unwrap();
        let info = Info::of(&dump, "x.dmp");
        std::fs::remove_file(&path).unwrap();
        let v = serde_json::to_value(&info).unwrap();
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["dump_type"], 6);
        assert_eq!(v["bugcheck_code"], "0x00000161");
        assert_eq!(v["bugcheck_parameters"][2], "0xfffff80512345678");
        assert_eq!(v["system_time"], "2024-03-01T00:00:01.2345678Z");
        assert_eq!(v["system_uptime"], "1d 01:01:01");
        assert_eq!(v["physical_pages"], 1);
        assert_eq!(v["comment"], "live dump");
        assert_eq!(v["warnings"].as_array().unwrap().len(), 0);
        assert!(info
            .text()
            .contains("Dump type               6 (bitmap kernel (live))"));
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/DUMPS.md")).unwrap();
        for key in v.as_object().unwrap().keys() {
            assert!(
                doc.contains(&format!("`{key}`")),
                "JSON key {key} is not documented in docs/DUMPS.md"
            );
        }
    }
}
