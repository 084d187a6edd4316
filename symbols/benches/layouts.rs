//! Cost of the built-in layout tables: the one-time parse of the embedded TOML (paid on the
//! first lookup of a process) and a cached lookup (paid per dump).
//!
//! Run: `cargo bench -p portleak-symbols --bench layouts`. Figures go in docs/PERFORMANCE.md.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use symbols::layouts;

fn bench(c: &mut Criterion) {
    c.bench_function("layouts/parse_all_embedded_tables", |b| {
        b.iter(|| black_box(layouts::parse_embedded_uncached().unwrap()))
    });
    // Warm the cache once; then each lookup is a scan of a few dozen tables.
    layouts::tcpip(19045, None).unwrap();
    c.bench_function("layouts/lookup_tcpip_afd_nt_cached", |b| {
        b.iter(|| {
            let t = layouts::tcpip(black_box(19045), None).unwrap();
            let a = layouts::afd(black_box(19045)).unwrap();
            let n = layouts::nt(black_box(19045)).unwrap();
            black_box((
                t.tcb.state.preferred(),
                a.endpoint.owner.preferred(),
                n.kuser.size,
            ))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
