//! Checks on the dumps the builder writes: every scenario builds and shows what it means to; the
//! dump reader, the kdmp-parser crate and (when installed) the Python kdmp-parser agree on them;
//! an independent walker finds exactly the truth; the symbol store reads back; builds are
//! deterministic. All scenarios are built once per test run and shared.

mod oracles;
mod walk;

use std::path::PathBuf;
use std::sync::OnceLock;

/// One built scenario.
pub struct Case {
    pub scenario: synth::Scenario,
    pub built: synth::Built,
}

fn out_root() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("synth-tests")
}

/// Every embedded scenario, built once.
pub fn cases() -> &'static [Case] {
    static CASES: OnceLock<Vec<Case>> = OnceLock::new();
    // Built on parallel threads: builds are independent and this is most of the test time.
    CASES.get_or_init(|| {
        std::thread::scope(|sc| {
            let jobs: Vec<_> = synth::scenarios::all()
                .iter()
                .map(|(name, text)| {
                    sc.spawn(move || {
                        let scenario = synth::Scenario::from_toml(text)
                            .unwrap_or_else(|e| panic!("{name}: {e}"));
                        let dir = out_root().join(name);
                        let _ = std::fs::remove_dir_all(&dir);
                        let built =
                            synth::build(&scenario, &dir).unwrap_or_else(|e| panic!("{name}: {e}"));
                        Case { scenario, built }
                    })
                })
                .collect();
            jobs.into_iter()
                .map(|j| j.join().expect("a scenario build panicked"))
                .collect()
        })
    })
}

/// The manifest of a build, read straight from the fixture directory (not through `synth`).
pub fn manifest(build: u32) -> serde_json::Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../../tests/fixtures/modules/{build}/manifest.json"
    ));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// `_TYPE.Field` offset from a manifest's ntoskrnl types.
pub fn nt_field(m: &serde_json::Value, ty: &str, field: &str) -> u64 {
    let types = &m["modules"]["ntoskrnl"]["types"];
    let t = if types.get(ty).is_some() {
        &types[ty]
    } else {
        &types[ty.replacen("_K", "_", 1)]
    };
    t["fields"][field]
        .as_u64()
        .unwrap_or_else(|| panic!("manifest lacks {ty}.{field}"))
}

#[test]
fn every_scenario_matches_its_intent() {
    for c in cases() {
        let t = &c.built.truth_data;
        eprintln!(
            "{}: {} endpoints, {} processes, range {} ({:.3}), 497={}, kernel={}, top={:?}, {} frames, {} bytes",
            t.scenario,
            t.endpoints.len(),
            t.processes.len(),
            t.derived.range,
            t.dynamic_range.tcp_share,
            t.derived.bug_497,
            t.derived.kernel_owned,
            t.derived.top_pid,
            c.built.frames,
            c.built.dump_size
        );
        let m = t.derived.mismatches(&c.scenario.expect);
        assert!(m.is_empty(), "{}: {m:?}", t.scenario);
        // The truth file on disk is the same truth.
        let on_disk: synth::Truth =
            serde_json::from_str(&std::fs::read_to_string(&c.built.truth).unwrap()).unwrap();
        assert_eq!(on_disk, *t);
    }
}

#[test]
fn bad_scenarios_are_refused_with_a_reason() {
    let base = synth::scenarios::get("f-win10-dual-stack").unwrap();
    let cases = [
        (
            base.replace("build = 19041", "build = 12345"),
            "no fake modules",
        ),
        (
            base.replace("partition_count = 8", "partition_count = 0"),
            "partition_count",
        ),
        (
            base.replace(
                "dynamic_ports = \"49152-65535\"",
                "dynamic_ports = \"49152-70000\"",
            ),
            "outside 1-65535",
        ),
        (
            base.replace("pid = 4\nimage = \"System\"", "pid = 8\nimage = \"System\""),
            "pid 4",
        ),
        (
            base.replace(
                "state = \"BOUND\"\nlocal = \"[::]:50500\"",
                "state = \"BOUND\"\nlocal = \"[::]:50500\"\nremote = \"[::1]:80\"",
            ),
            "must not have a remote",
        ),
        (
            base.replace("count = 600", "count = 70000")
                .replace("local_ports = \"443\"", "local_ports = \"dynamic\"")
                .replace(
                    "remote = \"[2001:db8:aaaa::/112]:1024-65535\"\nlocal = \"2001:db8:10::30\"",
                    "local = \"2001:db8:10::30\"",
                ),
            "needs a remote",
        ),
    ];
    for (text, why) in cases {
        let err = synth::Scenario::from_toml(&text)
            .and_then(|s| synth::build(&s, &out_root().join("bad")).map(|_| ()));
        let msg = err.expect_err(why).to_string();
        assert!(msg.contains(why), "expected {why:?} in {msg:?}");
    }
}

#[test]
fn demo_is_scenario_a() {
    let a = cases()
        .iter()
        .find(|c| c.scenario.name == synth::demo::SCENARIO)
        .unwrap();
    let d = synth::demo::build(&out_root().join("demo")).unwrap();
    assert_eq!(d.truth_data, a.built.truth_data);
    let lines = synth::demo::describe(&d);
    assert!(lines
        .iter()
        .any(|l| l.contains(&d.dump.display().to_string())));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("16384 of 16384 dynamic ports in use (exhausted)")),
        "{lines:?}"
    );
}
