//! Checks of the commands that run the analysis: against the in-memory fixture, then against every
//! scenario dump (built by `synth`), where `!portleak` must print what the CLI prints.

use crate::checks::{expect_hr, sane, visible, Checker, Outcome};
use crate::dll::{Call, Dll, Run, Session};
use crate::engine::Engine;
use crate::fixture;
use crate::printf::{read_dml, Link};
use portleak::analysis::{analyze, Options};
use portleak::offline::OfflineTarget;
use portleak::render::PlainText;
use portleak::report::{self, Filter};
use portleak::Target;
use std::path::Path;
use std::sync::Arc;
use windows::Win32::Foundation::{E_FAIL, S_OK};
use windows::Win32::System::Diagnostics::Debug::Extensions::{
    DEBUG_OUTPUT_ERROR, DEBUG_OUTPUT_NORMAL, DEBUG_OUTPUT_WARNING,
};

pub fn run(c: &mut Checker, dll: &Dll, scenarios: Option<&str>) {
    let Some(portleak) = dll.call("portleak") else {
        return;
    };
    fixture_checks(c, portleak);
    match scenarios {
        Some(dir) => scenario_checks(c, portleak, Path::new(dir)),
        None => println!("     (no --scenarios directory: the CLI comparison is skipped)"),
    }
}

/// Warning lines quote the back end's own reason for a failed read or lookup ("ReadVirtual failed
/// (HRESULT ...)" here, "page not present" in the in-memory target); only their kind and count are
/// compared for the fixture, whose memory is deliberately incomplete.
fn mask_reasons(s: &str) -> String {
    let mut in_warnings = false;
    s.lines()
        .map(|l| {
            if l.starts_with("WARNINGS") || l.starts_with("NOTES") {
                in_warnings = l.starts_with("WARNINGS");
            }
            match l.split_once(": ") {
                Some((kind, _)) if in_warnings && l.starts_with("  ") => {
                    format!("{kind}: <reason>")
                }
                _ => l.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The report names its back end on one line (`Target: ...`), which is the one line that differs
/// between the debugger and the CLI by design.
fn mask_target(s: &str) -> String {
    s.lines()
        .map(|l| {
            if l.starts_with("Target: ") {
                "Target: <masked>"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn engine_text(
    t: &dyn Target,
    view: impl FnOnce(&portleak::analysis::Analysis, &mut PlainText),
) -> String {
    let a = analyze(t, &Options::default());
    let mut out = PlainText::default();
    view(&a, &mut out);
    out.0
}

fn text_of(s: &Session, f: Call, args: &str, dml: bool) -> Result<(Run, String), String> {
    s.engine.behaviour.borrow_mut().prefer_dml = dml;
    let run = s.run(f, args);
    sane(&run)?;
    if dml
        && run
            .records
            .iter()
            .any(|r| r.mask == DEBUG_OUTPUT_NORMAL && !r.dml)
    {
        return Err("normal output not marked as DML although the engine prefers DML".into());
    }
    let t = visible(&run.records, DEBUG_OUTPUT_NORMAL)?;
    Ok((run, t))
}

fn links(run: &Run) -> Result<Vec<Link>, String> {
    let mut v = Vec::new();
    for r in run.records.iter().filter(|r| r.dml) {
        v.extend(read_dml(&r.text)?.1);
    }
    Ok(v)
}

fn same(what: &str, got: &str, want: &str) -> Outcome {
    if got == want {
        return Ok(());
    }
    let (g, w): (Vec<_>, Vec<_>) = (got.lines().collect(), want.lines().collect());
    let i = g
        .iter()
        .zip(&w)
        .position(|(a, b)| a != b)
        .unwrap_or(g.len().min(w.len()));
    Err(format!(
        "{what} differs at line {}: got {:?}, expected {:?} ({} vs {} lines)",
        i + 1,
        g.get(i).copied().unwrap_or("<end>"),
        w.get(i).copied().unwrap_or("<end>"),
        g.len(),
        w.len()
    ))
}

fn fixture_checks(c: &mut Checker, portleak: Call) {
    let s = Session::new(Engine::new(Box::new(fixture::with_processes())));
    let direct = fixture::with_processes();
    let mut plain = String::new();
    c.check("-report (text) equals the engine's report over the same memory", || {
        let (run, t) = text_of(&s, portleak, "-report", false)?;
        expect_hr(&run, S_OK)?;
        plain = t.clone();
        let want = engine_text(&direct, |a, o| report::report(a, o));
        same("report", &mask_reasons(&mask_target(&t)), &mask_reasons(&mask_target(&want)))?;
        for needle in ["Processes     3", "build 17763", "System time   2026-11-21 12:00:00 UTC", "Uptime        1 d 12:00:00"] {
            if !t.contains(needle) {
                return Err(format!("report lacks {needle:?} (from the process list, GetSystemVersionValues, GetCurrentTimeDate)"));
            }
        }
        Ok(())
    });
    c.check(
        "-report (DML) is well-formed and shows the same text",
        || {
            let (run, t) = text_of(&s, portleak, "-report", true)?;
            expect_hr(&run, S_OK)?;
            same("DML report", &t, &plain)
        },
    );
    c.check(
        "% and DML metacharacters in a process name come out literally",
        || {
            let name = fixture::PROCESSES[1].1;
            let (_, t) = text_of(&s, portleak, "-process 1234", false)?;
            let (run, d) = text_of(&s, portleak, "-process 1234", true)?;
            if !t.contains(&format!("Process 1234 ({name})")) {
                return Err(format!("text output lacks the name {name:?}: {t:?}"));
            }
            same("DML process view", &d, &t)?;
            let ep = fixture::PROCESSES[1].2;
            let l = links(&run)?;
            if !l.iter().any(|l| {
                l.cmd == format!("dt nt!_EPROCESS {ep:#x}") && l.label == format!("{ep:#x}")
            }) {
                return Err(format!("no drill-down link to the EPROCESS in {l:?}"));
            }
            Ok(())
        },
    );
    c.check("-process <EPROCESS address> equals -process <pid>", || {
        let (_, by_pid) = text_of(&s, portleak, "-process 0n4", false)?;
        let (run, by_va) = text_of(
            &s,
            portleak,
            &format!("-process {:#x}", fixture::PROCS),
            false,
        )?;
        expect_hr(&run, S_OK)?;
        same("process view", &by_va, &by_pid)
    });
    c.check("-process of an unknown pid -> E_FAIL naming it", || {
        let (run, _) = text_of(&s, portleak, "-process 77", false)?;
        expect_hr(&run, E_FAIL)?;
        let e = visible(&run.records, DEBUG_OUTPUT_ERROR)?;
        if e.contains("no process id 77") {
            Ok(())
        } else {
            Err(format!("error {e:?}"))
        }
    });
    c.check(
        "pending interrupt (GetInterrupt S_OK) -> partial result, said so",
        || {
            s.engine.behaviour.borrow_mut().interrupt_after = Some(0);
            let r = text_of(&s, portleak, "-report", false);
            s.engine.behaviour.borrow_mut().interrupt_after = None;
            let (run, t) = r?;
            expect_hr(&run, S_OK)?;
            let w = visible(&run.records, DEBUG_OUTPUT_WARNING)?;
            if !t.contains("PARTIAL RESULT") || !w.contains("interrupted (Ctrl+Break)") {
                return Err(format!("no partial notice; warnings {w:?}"));
            }
            if s.engine.count("GetInterrupt") == 0 {
                return Err("GetInterrupt was never polled".into());
            }
            Ok(())
        },
    );
    c.check(
        "no interrupt pending (GetInterrupt S_FALSE) -> complete result",
        || {
            let (_, t) = text_of(&s, portleak, "-report", false)?;
            if t.contains("PARTIAL") {
                Err("S_FALSE was taken as an interrupt".into())
            } else {
                Ok(())
            }
        },
    );
    c.check(
        "reads split at page boundaries are continued (name across two pages)",
        || {
            s.engine.behaviour.borrow_mut().split_reads_at_pages = true;
            let r = text_of(&s, portleak, "-process 88", false);
            let r2 = text_of(&s, portleak, "-report", false);
            s.engine.behaviour.borrow_mut().split_reads_at_pages = false;
            let ((_, t), (_, rep)) = (r?, r2?);
            if !t.contains("Process 88 (split.exe)") {
                return Err(format!("the page-crossing name was not read whole: {t:?}"));
            }
            same("report with split reads", &rep, &plain)
        },
    );
    c.check(
        "an unreadable page mid-structure is a warning, not a failure",
        || {
            let mut t = fixture::with_processes();
            t.unmap_page(fixture::PROCS + 0x3000);
            let s2 = Session::new(Engine::new(Box::new(t)));
            let (run, out) = text_of(&s2, portleak, "-report -v", false)?;
            expect_hr(&run, S_OK)?;
            if !out.contains("Processes     2") || !out.contains("process-unreadable") {
                return Err("expected 2 processes and a process-unreadable warning".into());
            }
            if s2.engine.count("ReadVirtual") == 0 {
                return Err("no ReadVirtual calls".into());
            }
            Ok(())
        },
    );
    c.check(
        "type information is looked up once per type per command",
        || {
            let _ = text_of(&s, portleak, "-report", false)?;
            let (ids, fields) = (
                s.engine.count("GetSymbolTypeId"),
                s.engine.count("GetFieldOffset"),
            );
            let distinct = s.engine.distinct_types();
            if ids != distinct || fields == 0 {
                return Err(format!(
                    "{ids} GetSymbolTypeId calls for {distinct} types ({fields} GetFieldOffset)"
                ));
            }
            Ok(())
        },
    );
    c.check("-json <file> writes the analysis", || {
        let path = std::env::temp_dir().join(format!("portleak-host-{}.json", std::process::id()));
        let (run, t) = text_of(
            &s,
            portleak,
            &format!("-json \"{}\"", path.display()),
            false,
        )?;
        let body =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let _ = std::fs::remove_file(&path);
        expect_hr(&run, S_OK)?;
        if !t.starts_with("Wrote the analysis")
            || !body.contains("\"schema_version\"")
            || !body.contains("split.exe")
        {
            return Err(format!("output {t:?}, file of {} bytes", body.len()));
        }
        Ok(())
    });
}

fn scenario_checks(c: &mut Checker, portleak: Call, dir: &Path) {
    let mut files: Vec<_> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect(),
        Err(e) => {
            c.check(&format!("scenarios in {}", dir.display()), || {
                Err(e.to_string())
            });
            return;
        }
    };
    files.sort();
    let cache = Arc::new(symbols::SymbolCache::new());
    for file in files {
        let name = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        c.check(
            &format!("scenario {name}: !portleak -report equals portleak report; -endpoints too"),
            || scenario(portleak, &file, &name, &cache),
        );
    }
}

fn scenario(portleak: Call, file: &Path, name: &str, cache: &Arc<symbols::SymbolCache>) -> Outcome {
    let toml = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let sc =
        synth::Scenario::from_toml(&toml).map_err(|e| format!("scenario does not parse: {e}"))?;
    let out = std::env::temp_dir().join(format!("portleak-host-{}-{name}", std::process::id()));
    let built = synth::build(&sc, &out).map_err(|e| format!("synth::build: {e}"))?;
    let result = (|| {
        let sym = symbols::SymbolPath::parse(&format!("srv*{}", built.symbols_dir.display()));
        // The engine object must own a 'static target; the dump lives until the host exits.
        let dump: &'static dumps::Dump = Box::leak(Box::new(
            dumps::Dump::open(&built.dump).map_err(|e| format!("dump: {e}"))?,
        ));
        let cli = OfflineTarget::new(dump, sym.clone(), cache.clone());
        let a = analyze(&cli, &Options::default());
        let (mut want_report, mut want_endpoints) = (PlainText::default(), PlainText::default());
        report::report(&a, &mut want_report);
        report::endpoints(&a, &Filter::default(), &mut want_endpoints);
        let (want_report, want_endpoints) = (want_report.0, want_endpoints.0);
        let s = Session::new(Engine::new(Box::new(OfflineTarget::new(
            dump,
            sym,
            cache.clone(),
        ))));

        let (run, got) = text_of(&s, portleak, "-report", false)?;
        expect_hr(&run, S_OK)?;
        same("report", &mask_target(&got), &mask_target(&want_report))?;
        let (run, got_dml) = text_of(&s, portleak, "-report", true)?;
        same("DML report", &got_dml, &got)?;
        let l = links(&run)?;
        if !l.iter().any(|l| l.cmd.starts_with("!portleak -process ")) {
            return Err("the DML report has no drill-down links to processes".into());
        }
        let (run, eps) = text_of(&s, portleak, "-endpoints", true)?;
        expect_hr(&run, S_OK)?;
        same("endpoint list", &eps, &want_endpoints)?;
        let l = links(&run)?;
        if !l.iter().any(|l| l.cmd.starts_with("!pool 0x")) {
            return Err("the DML endpoint list has no !pool links".into());
        }
        // Ctrl+Break a few polls into the walk: a partial list, marked as such.
        s.engine.behaviour.borrow_mut().interrupt_after = Some(3);
        let r = text_of(&s, portleak, "-endpoints", false);
        s.engine.behaviour.borrow_mut().interrupt_after = None;
        let (run, part) = r?;
        expect_hr(&run, S_OK)?;
        let warn = visible(&run.records, DEBUG_OUTPUT_WARNING)?;
        if !warn.contains("PARTIAL") || part.lines().count() > eps.lines().count() {
            return Err(format!(
                "interrupted -endpoints: warnings {warn:?}, {} lines",
                part.lines().count()
            ));
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&out);
    result
}
