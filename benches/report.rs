//! The full report on a 64 GiB-RAM dump holding 100,000+ endpoints: warm time, peak RSS, and the
//! pages the walk touches, next to the same endpoints in an 8 GiB dump (pages touched must follow
//! the endpoints, not the size of the dump).
//!
//! Run: `cargo bench -p portleak --bench report`. A bench binary, not criterion: each analysis runs
//! in a child process of its own so its peak RSS (VmHWM) is the analysis's alone, not the
//! builder's. Figures go to docs/PERFORMANCE.md ("Engine: the report").

use portleak::analysis::{analyze, Options};
use portleak::offline::OfflineTarget;
use portleak::testing::Watched;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;
use symbols::{SymbolCache, SymbolPath};

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Child: open, analyse `runs` times (first cold, the rest warm), print one line of figures.
fn child(dump: &Path, symbols: &Path, runs: usize) {
    let cache = Arc::new(SymbolCache::new());
    let sym = SymbolPath::parse(&format!("srv*{}", symbols.display()));
    let mut times = Vec::new();
    let mut endpoints = 0;
    let mut touched = 0;
    for i in 0..runs {
        let t0 = Instant::now();
        let d = dumps::Dump::open(dump).expect("dump opens");
        let t = OfflineTarget::new(&d, sym.clone(), cache.clone());
        let a = if i == 0 {
            let c = Watched::new(&t);
            let a = analyze(&c, &Options::default());
            touched = c.pages_read();
            a
        } else {
            analyze(&t, &Options::default())
        };
        let mut out = portleak::render::PlainText::default();
        portleak::report::report(&a, &mut out);
        times.push(t0.elapsed().as_secs_f64());
        endpoints = a.endpoints.len();
    }
    let warm = &mut times[1..].to_vec();
    warm.sort_by(f64::total_cmp);
    println!(
        "endpoints {endpoints}  first run {:.3} s (counting pages)  warm median {:.3} s  warm best {:.3} s  peak RSS {:.1} MiB  distinct pages read {touched}",
        times[0],
        warm[warm.len() / 2],
        warm[0],
        vm_hwm_kib() as f64 / 1024.0
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(Path::new(&args[i + 1]), Path::new(&args[i + 2]), 6);
        return;
    }
    let root = std::env::temp_dir().join(format!("portleak-bench-report-{}", std::process::id()));
    for ram_gib in [64u64, 8] {
        let dir = root.join(format!("{ram_gib}g"));
        let s =
            synth::Scenario::from_toml(&synth::scenarios::scale(ram_gib)).expect("scale scenario");
        let t0 = Instant::now();
        let b = synth::build(&s, &dir).expect("scale dump builds");
        println!(
            "{ram_gib} GiB RAM: dump {} bytes logical, built in {:.2} s",
            b.dump_size,
            t0.elapsed().as_secs_f64()
        );
        let out = Command::new(std::env::current_exe().expect("own path"))
            .args([
                "--child",
                b.dump.to_str().unwrap(),
                b.symbols_dir.to_str().unwrap(),
            ])
            .output()
            .expect("child runs");
        print!("  {}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = std::fs::remove_dir_all(&root);
}
