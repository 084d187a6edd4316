//! Resolving everything the engine asks of a kernel PDB, cold and warm.
//!
//! Run: `cargo bench -p portleak-symbols --bench pdb` (needs clang and lld-link: the kernel-sized
//! PDB is generated into the target directory on first run). Figures go in docs/PERFORMANCE.md.

#[path = "support/kernelgen.rs"]
mod kernelgen;

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use symbols::{Pdb, SymbolCache};

/// Every type size, field offset and public the engine needs, checked against the generator.
fn resolve_all(pdb: &Pdb) {
    for w in kernelgen::wanted() {
        assert_eq!(pdb.type_size(w.name).unwrap(), w.size, "sizeof {}", w.name);
        for (f, off) in &w.fields {
            assert_eq!(pdb.field_offset(w.name, f).unwrap(), *off, "{}.{f}", w.name);
        }
    }
    for p in kernelgen::PUBLICS {
        black_box(pdb.symbol_rva(p).unwrap());
    }
}

fn describe(path: &Path) {
    let pdb = Pdb::open_unchecked(path).unwrap();
    let size = std::fs::metadata(path).unwrap().len();
    let t = Instant::now();
    resolve_all(&pdb);
    eprintln!(
        "bench PDB: {} ({:.1} MB, {} publics/globals); one cold resolve-all took {:?}",
        path.display(),
        size as f64 / 1e6,
        pdb.symbol_count().unwrap(),
        t.elapsed()
    );
}

fn benches(c: &mut Criterion) {
    let path = kernelgen::build();
    describe(&path);
    let mut g = c.benchmark_group("symbols");
    g.measurement_time(Duration::from_secs(8));
    g.sample_size(20);
    g.bench_function("cold_open_and_resolve_all", |b| {
        b.iter(|| {
            let pdb = Pdb::open_unchecked(&path).unwrap();
            resolve_all(&pdb);
        })
    });
    g.bench_function("cold_open_only", |b| {
        b.iter(|| black_box(Pdb::open_unchecked(&path).unwrap()))
    });
    g.bench_function("cold_first_type_query", |b| {
        b.iter_with_setup(
            || Pdb::open_unchecked(&path).unwrap(),
            |pdb| {
                black_box(
                    pdb.field_offset("_EPROCESS", "Pcb.DirectoryTableBase")
                        .unwrap(),
                )
            },
        )
    });
    g.bench_function("cold_first_symbol_query", |b| {
        b.iter_with_setup(
            || Pdb::open_unchecked(&path).unwrap(),
            |pdb| black_box(pdb.symbol_rva("PsActiveProcessHead").unwrap()),
        )
    });
    g.finish();

    let warm = Pdb::open_unchecked(&path).unwrap();
    resolve_all(&warm);
    let mut g = c.benchmark_group("symbols_cached");
    g.bench_function("field_offset", |b| {
        b.iter(|| {
            black_box(
                warm.field_offset(black_box("_EPROCESS"), black_box("Pcb.DirectoryTableBase"))
                    .unwrap(),
            )
        })
    });
    g.bench_function("symbol_rva", |b| {
        b.iter(|| black_box(warm.symbol_rva(black_box("PsLoadedModuleList")).unwrap()))
    });
    g.bench_function("resolve_all", |b| b.iter(|| resolve_all(&warm)));
    let cache = SymbolCache::new();
    let id = warm.id().clone();
    cache.load(&path, &id).unwrap();
    g.bench_function("cache_hit", |b| {
        b.iter(|| black_box(cache.load(&path, &id).unwrap()))
    });
    g.finish();
}

criterion_group!(pdb_benches, benches);
criterion_main!(pdb_benches);
