//! Scale bench: a 64 GiB-RAM bitmap dump (every page present, zero pages as file holes) holding
//! 100,000+ endpoints, built from a scenario generated here. Prints build time, logical size and
//! disk use. Run: `cargo bench -p portleak-synth --bench scale` (figures in docs/PERFORMANCE.md).
//! `SYNTH_SCALE_RAM_GIB` and `SYNTH_SCALE_OUT` override the RAM size and output directory.

use std::time::Instant;

fn main() {
    let ram_gib: u64 = std::env::var("SYNTH_SCALE_RAM_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let out = std::env::var("SYNTH_SCALE_OUT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir().join("portleak-synth-scale"));
    let s = synth::Scenario::from_toml(&synth::scenarios::scale(ram_gib))
        .expect("bench scenario parses");
    let _ = std::fs::remove_dir_all(&out);
    let t0 = Instant::now();
    let b = synth::build(&s, &out).expect("bench scenario builds");
    let secs = t0.elapsed().as_secs_f64();
    let disk = disk_bytes(&b.dump);
    println!(
        "scale-100k: {} endpoints, {ram_gib} GiB RAM, {} data frames, dump {} bytes logical, {} bytes on disk, built in {secs:.2} s",
        b.truth_data.endpoints.len(),
        b.frames,
        b.dump_size,
        disk.map_or("?".into(), |d| d.to_string()),
    );
    assert!(b.truth_data.endpoints.len() >= 100_000);
    let _ = std::fs::remove_dir_all(&out);

    // The embedded scenarios, for the record.
    for (name, text) in synth::scenarios::all() {
        let s = synth::Scenario::from_toml(text).expect("embedded scenario parses");
        let dir = out.join(name);
        let t0 = Instant::now();
        let b = synth::build(&s, &dir).expect("embedded scenario builds");
        println!(
            "{name}: {} endpoints, {} data frames, dump {} bytes, built in {:.2} s",
            b.truth_data.endpoints.len(),
            b.frames,
            b.dump_size,
            t0.elapsed().as_secs_f64()
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// Allocated bytes of a (sparse) file, via `du`, when available.
fn disk_bytes(p: &std::path::Path) -> Option<u64> {
    let o = std::process::Command::new("du")
        .arg("-B1")
        .arg(p)
        .output()
        .ok()?;
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
