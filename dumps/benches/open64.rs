//! Dump reader vs the `kdmp-parser` crate on a generated sparse bitmap dump of 64 GiB of RAM.
//!
//! A bench binary, not criterion: one open of a 64 GiB dump costs the peer over a second and
//! half a GiB, and RSS must be measured in a fresh process per reader, which criterion's harness
//! cannot do. Run: `cargo bench -p portleak-dumps --bench open64` (env `PORTLEAK_BENCH_GIB`
//! changes the RAM size, default 64). The parent writes the dump to the temp dir, runs each reader
//! in a child process of this same binary, prints a table and deletes the dump.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use dumps::synth::{write_dump, DumpKind, DumpSpec, Memory, PageSize, PageTables, PteFlags};
use dumps::{Dump, Gpa, Gva, Reader};
use kdmp_parser::{gxa as kgxa, parse::KernelDumpParser, phys as kphys, virt as kvirt};

/// Mapped kernel VA window used for virtual reads (1 GiB of 4 KiB pages over filler frames).
const VA_BASE: u64 = 0xFFFF_A000_0000_0000;
const VA_PAGES: u64 = 1 << 18;
const PHYS_READS: u64 = 100_000;
const VIRT_READS: u64 = 200_000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn vm_rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Present PFN ranges of a machine with `gib` GiB: the legacy hole below 1 MiB and a PCI hole at
/// 3-4 GiB, as firmware maps report them.
fn ram_ranges(gib: u64) -> Vec<std::ops::Range<u64>> {
    let pages = gib << 18;
    vec![
        1..0x9F,
        0x100..0xC_0000,
        0x10_0000..0x10_0000 + pages - 0xC_0000 + 0x100 - 0x9F + 1,
    ]
}

fn build(path: &Path, gib: u64) -> (f64, u64, u64) {
    let t = Instant::now();
    let mut mem = Memory::new();
    let mut pt = PageTables::new(&mut mem);
    let ranges = ram_ranges(gib);
    let top = ranges.last().unwrap().end;
    // Tables for VA_PAGES 4 KiB pages spread over all of RAM (frames from the top range).
    let span = (top - 0x10_0000) / VA_PAGES;
    for i in 0..VA_PAGES {
        let pfn = 0x10_0000 + i * span;
        pt.map(
            &mut mem,
            Gva(VA_BASE + i * 0x1000),
            dumps::Pfn(pfn).gpa(),
            PageSize::K4,
            PteFlags::default(),
        )
        .unwrap();
    }
    let spec = DumpSpec {
        kind: DumpKind::BitmapFull,
        dtb: pt.pml4.u64(),
        filler: ranges,
        ..DumpSpec::default()
    };
    let size = write_dump(path, &mem, &spec).unwrap();
    let secs = t.elapsed().as_secs_f64();
    (secs, size, disk_usage(path))
}

/// Each reader gets its own random frames (`seed`), so its first pass really is the first touch
/// of those pages in the page cache.
fn prewarm(path: &Path) {
    let d = Dump::open(path).unwrap();
    let r = Reader::new(&d).without_cache();
    let mut b = [0u8; 8];
    for i in 0..VA_PAGES {
        r.read_exact(Gva(VA_BASE + i * 0x1000), &mut b).unwrap();
    }
}

/// Bytes the file really occupies on disk (it is sparse).
#[cfg(unix)]
fn disk_usage(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map_or(0, |m| m.blocks() * 512)
}
#[cfg(not(unix))]
fn disk_usage(_: &Path) -> u64 {
    0
}

fn random_pfns(gib: u64, seed: u64) -> Vec<u64> {
    let r = ram_ranges(gib);
    let top = &r[2];
    let mut rng = Rng(0x1234_5678_9ABC_DEF1 ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    (0..PHYS_READS)
        .map(|_| top.start + rng.next() % (top.end - top.start))
        .collect()
}

fn random_vas(hot: bool) -> Vec<u64> {
    let mut rng = Rng(0x0F0F_1234_5678_9ABD);
    let pages = if hot { 64 } else { VA_PAGES };
    (0..VIRT_READS)
        .map(|_| VA_BASE + (rng.next() % pages) * 0x1000 + (rng.next() % 0xFF8))
        .collect()
}

fn rate(n: u64, t: Instant) -> f64 {
    n as f64 / t.elapsed().as_secs_f64()
}

/// Child: open with one reader and measure; prints one `RESULT` line.
fn child(which: &str, path: &Path, gib: u64) {
    let seed = which
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let pfns = random_pfns(gib, seed);
    let cold_vas = random_vas(false);
    let hot_vas = random_vas(true);
    let rss0 = vm_rss_kib();
    let t = Instant::now();
    let mut buf = [0u8; 4096];
    let mut b8 = [0u8; 8];
    let (open_s, rss1, phys_cold, phys_warm, virt_cold, virt_hot);
    match which {
        "dumps" | "dumps-nocache" => {
            let d = Dump::open(path).unwrap();
            open_s = t.elapsed().as_secs_f64();
            rss1 = vm_rss_kib();
            let t = Instant::now();
            for &p in &pfns {
                d.read_phys(Gpa(p << 12), &mut buf).unwrap();
                black_box(&buf);
            }
            phys_cold = rate(PHYS_READS, t);
            let t = Instant::now();
            for &p in &pfns {
                d.read_phys(Gpa(p << 12), &mut buf).unwrap();
                black_box(&buf);
            }
            phys_warm = rate(PHYS_READS, t);
            let r = if which == "dumps" {
                Reader::new(&d)
            } else {
                Reader::new(&d).without_cache()
            };
            let t = Instant::now();
            for &va in &cold_vas {
                r.read_exact(Gva(va), &mut b8).unwrap();
                black_box(&b8);
            }
            virt_cold = rate(VIRT_READS, t);
            let t = Instant::now();
            for &va in &hot_vas {
                r.read_exact(Gva(va), &mut b8).unwrap();
                black_box(&b8);
            }
            virt_hot = rate(VIRT_READS, t);
        }
        _ => {
            let p = KernelDumpParser::new(path).unwrap();
            open_s = t.elapsed().as_secs_f64();
            rss1 = vm_rss_kib();
            let pr = kphys::Reader::new(&p);
            let t = Instant::now();
            for &pfn in &pfns {
                pr.read_exact(kgxa::Gpa::new(pfn << 12), &mut buf).unwrap();
                black_box(&buf);
            }
            phys_cold = rate(PHYS_READS, t);
            let t = Instant::now();
            for &pfn in &pfns {
                pr.read_exact(kgxa::Gpa::new(pfn << 12), &mut buf).unwrap();
                black_box(&buf);
            }
            phys_warm = rate(PHYS_READS, t);
            let vr = kvirt::Reader::new(&p);
            let t = Instant::now();
            for &va in &cold_vas {
                vr.read_exact(kgxa::Gva::new(va), &mut b8).unwrap();
                black_box(&b8);
            }
            virt_cold = rate(VIRT_READS, t);
            let t = Instant::now();
            for &va in &hot_vas {
                vr.read_exact(kgxa::Gva::new(va), &mut b8).unwrap();
                black_box(&b8);
            }
            virt_hot = rate(VIRT_READS, t);
        }
    }
    println!(
        "RESULT {which} {open_s} {} {phys_cold} {phys_warm} {virt_cold} {virt_hot}",
        rss1.saturating_sub(rss0)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let gib: u64 = std::env::var("PORTLEAK_BENCH_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    if args.get(1).map(String::as_str) == Some("--child") {
        child(&args[2], Path::new(&args[3]), gib);
        return;
    }
    let path: PathBuf =
        std::env::temp_dir().join(format!("portleak-bench-{}-{gib}g.dmp", std::process::id()));
    let (write_s, size, disk) = build(&path, gib);
    println!(
        "wrote {} ({} GiB RAM, {size} bytes, {} KiB on disk) in {write_s:.2} s",
        path.display(),
        gib,
        disk / 1024
    );
    // Virtual reads measure translation, not page-cache population: bring the frames of the VA
    // window (and the tables) into the page cache first, the same for every reader.
    let t = Instant::now();
    prewarm(&path);
    println!(
        "page cache warmed for the VA window in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let exe = std::env::current_exe().unwrap();
    println!("| reader | open+index | RSS after open | random 4 KiB phys reads/s (first / second touch) | random 8-byte virt reads/s (1 GiB spread / 64-page hot set) |");
    println!("|---|---|---|---|---|");
    let mut rows = Vec::new();
    // Each reader twice, interleaved, so order effects (page-cache and load changes on a shared
    // machine) show up as run-to-run spread instead of favouring one reader.
    for which in [
        "dumps",
        "kdmp-parser",
        "dumps-nocache",
        "kdmp-parser",
        "dumps",
        "dumps-nocache",
    ] {
        let out = Command::new(&exe)
            .args(["--child", which])
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let Some(line) = text.lines().find_map(|l| l.strip_prefix("RESULT ")) else {
            eprintln!("{which} failed: {}", String::from_utf8_lossy(&out.stderr));
            continue;
        };
        let f: Vec<f64> = line
            .split(' ')
            .skip(1)
            .map(|x| x.parse().unwrap())
            .collect();
        println!(
            "| {which} | {:.2} ms | {:.1} MiB | {:.0} / {:.0} | {:.0} / {:.0} |",
            f[0] * 1e3,
            f[1] / 1024.0,
            f[2],
            f[3],
            f[4],
            f[5]
        );
        rows.push((which, f));
    }
    // Best run of each reader: least time and memory, highest rates.
    let best = |name: &str| -> Option<Vec<f64>> {
        let runs: Vec<&Vec<f64>> = rows.iter().filter(|r| r.0 == name).map(|r| &r.1).collect();
        (!runs.is_empty()).then(|| {
            (0..6)
                .map(|k| {
                    let col = runs.iter().map(|f| f[k]);
                    if k < 2 {
                        col.fold(f64::MAX, f64::min)
                    } else {
                        col.fold(0.0, f64::max)
                    }
                })
                .collect()
        })
    };
    if let (Some(a), Some(b)) = (best("dumps"), best("kdmp-parser")) {
        println!(
            "best runs: open+index {:.0}x faster, {:.0}x less RSS; phys reads {:.2}x/{:.2}x, virt reads {:.2}x/{:.2}x the peer's rate",
            b[0] / a[0],
            b[1] / a[1].max(1.0),
            a[2] / b[2],
            a[3] / b[3],
            a[4] / b[4],
            a[5] / b[5]
        );
    }
    let _ = std::fs::remove_file(&path);
}
