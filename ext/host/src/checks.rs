//! The checks: each prints `ok   name` or `FAIL name: why`.

use crate::dll::{Call, Dll, Run, Session};
use crate::engine::{Engine, Record};
use crate::fixture;
use crate::printf::read_dml;
use std::sync::atomic::{AtomicBool, Ordering};
use windows::Win32::Foundation::{E_FAIL, E_INVALIDARG, E_POINTER, S_OK};
use windows::Win32::System::Diagnostics::Debug::Extensions::{
    DEBUG_OUTPUT_ERROR, DEBUG_OUTPUT_NORMAL,
};
use windows_core::PCSTR;

pub struct Checker {
    pub passed: u32,
    pub failed: u32,
}

/// `--verbose`: echo every Output record.
static VERBOSE: AtomicBool = AtomicBool::new(false);

pub type Outcome = Result<(), String>;

impl Checker {
    pub fn check(&mut self, name: &str, f: impl FnOnce() -> Outcome) {
        match f() {
            Ok(()) => {
                self.passed += 1;
                println!("ok   {name}");
            }
            Err(why) => {
                self.failed += 1;
                println!("FAIL {name}: {why}");
            }
        }
    }
}

pub fn main() -> i32 {
    let mut dll_path = None;
    let mut scenarios = None;
    let mut verbose = std::env::var_os("HOST_VERBOSE").is_some();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--verbose" | "-v" => verbose = true,
            "--scenarios" => scenarios = args.next(),
            _ if dll_path.is_none() => dll_path = Some(a),
            _ => {
                eprintln!("usage: portleak-ext-host [path/to/portleak.dll] [--scenarios <dir>] [--verbose]");
                return 2;
            }
        }
    }
    let dll_path = dll_path.unwrap_or_else(|| {
        let exe = std::env::current_exe().unwrap_or_default();
        exe.with_file_name("portleak.dll")
            .to_string_lossy()
            .into_owned()
    });
    VERBOSE.store(verbose, Ordering::Relaxed);
    let mut c = Checker {
        passed: 0,
        failed: 0,
    };
    let dll = match Dll::load(&dll_path) {
        Ok(d) => d,
        Err(e) => {
            println!("FAIL load portleak.dll: {e}");
            println!("0 passed, 1 failed");
            return 1;
        }
    };
    c.check("load portleak.dll", || Ok(()));
    self_test(&mut c);
    basic(&mut c, &dll);
    crate::checks_engine::run(&mut c, &dll, scenarios.as_deref());
    if let Some(u) = dll.uninitialize() {
        // SAFETY: the engine calls this once before unloading.
        unsafe { u() };
    }
    println!("{} passed, {} failed", c.passed, c.failed);
    i32::from(c.failed > 0)
}

/// Joined text of the records with `mask`, DML decoded to what the user sees.
pub fn visible(records: &[Record], mask: u32) -> Result<String, String> {
    let mut s = String::new();
    for r in records.iter().filter(|r| r.mask == mask) {
        if r.dml {
            let (t, _) = read_dml(&r.text)
                .map_err(|e| format!("malformed DML ({e}) in record {:?}", r.text))?;
            s.push_str(&t);
        } else {
            s.push_str(&r.text);
        }
    }
    Ok(s)
}

/// Common assertions on every run: references balance, no printf accidents, and (if asked)
/// echoes the records.
pub fn sane(run: &Run) -> Outcome {
    if VERBOSE.load(Ordering::Relaxed) {
        for r in &run.records {
            println!(
                "     > [{}{:#x}] {}",
                if r.dml { "dml " } else { "" },
                r.mask,
                r.text.trim_end().replace('\n', "\n       ")
            );
        }
    }
    if run.refs.0 != run.refs.1 {
        return Err(format!(
            "COM references on the engine went from {} to {}",
            run.refs.0, run.refs.1
        ));
    }
    if let Some(e) = run.records.iter().find_map(|r| r.format_error.clone()) {
        return Err(e);
    }
    Ok(())
}

pub fn expect_hr(run: &Run, want: windows_core::HRESULT) -> Outcome {
    if run.hr != want {
        let err = visible(&run.records, DEBUG_OUTPUT_ERROR).unwrap_or_default();
        return Err(format!(
            "returned {:#010x}, expected {:#010x}; errors: {}",
            run.hr.0,
            want.0,
            err.trim()
        ));
    }
    Ok(())
}

/// The checks below trust the fake engine's printf and DML readers; make sure they can fail.
fn self_test(c: &mut Checker) {
    c.check("self-test: the DML reader rejects malformed markup", || {
        let bad = [
            "<b>x",
            "</b>",
            "<link>x</link>",
            "a & b",
            "<b>x</i>",
            "x > y",
            "<blink>x</blink>",
            "<link cmd=\"a\"b\">x</link>",
        ];
        if let Some(b) = bad.iter().find(|b| read_dml(b).is_ok()) {
            return Err(format!("accepted {b:?}"));
        }
        let (text, links) = read_dml("<b>a&amp;</b><link cmd=\"!x &quot;y&quot;\">l&lt;</link>")?;
        if text != "a&l<"
            || links.len() != 1
            || links[0].cmd != "!x \"y\""
            || links[0].label != "l<"
        {
            return Err(format!("decoded {text:?} {links:?}"));
        }
        Ok(())
    });
    c.check(
        "self-test: the fake printf flags unescaped conversions",
        || match (
            crate::printf::format("100%% done"),
            crate::printf::format("50%s"),
        ) {
            ((ok, None), (_, Some(_))) if ok == "100% done" => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
}

fn basic(c: &mut Checker, dll: &Dll) {
    let names = [
        "DebugExtensionInitialize",
        "DebugExtensionUninitialize",
        "DebugExtensionNotify",
        "portleak",
        "help",
    ];
    c.check("exports present", || {
        let missing: Vec<_> = names.iter().filter(|n| dll.export(n).is_none()).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("missing {missing:?}"))
        }
    });
    let (Some(init), Some(portleak), Some(help)) =
        (dll.initialize(), dll.call("portleak"), dll.call("help"))
    else {
        return;
    };
    c.check("DebugExtensionInitialize", || {
        let (mut v, mut f) = (0u32, 0xFFu32);
        // SAFETY: valid out pointers, then null ones (which must be refused, not written).
        let hr = unsafe { init(&mut v, &mut f) };
        let null_hr = unsafe { init(std::ptr::null_mut(), std::ptr::null_mut()) };
        match (hr, v, f, null_hr) {
            (S_OK, 0x0001_0000, 0, E_POINTER) => Ok(()),
            _ => Err(format!(
                "hr {:#x} version {v:#x} flags {f:#x}; with null pointers {:#x}",
                hr.0, null_hr.0
            )),
        }
    });
    c.check("DebugExtensionNotify", || {
        let n = dll.notify().ok_or("no export")?;
        // SAFETY: DEBUG_NOTIFY_SESSION_ACTIVE / _ACCESSIBLE / _INACCESSIBLE / _INACTIVE.
        unsafe {
            for code in [0, 2, 3, 1] {
                n(code, 0);
            }
        }
        Ok(())
    });
    c.check("null client -> E_POINTER", || {
        // SAFETY: a null client must be refused before any use.
        let hr = unsafe { portleak(std::ptr::null_mut(), PCSTR(c"-h".as_ptr().cast())) };
        if hr == E_POINTER {
            Ok(())
        } else {
            Err(format!("returned {:#x}", hr.0))
        }
    });

    let s = Session::new(Engine::new(Box::new(fixture::bare_kernel())));
    usage_checks(c, &s, portleak, help);
    argument_errors(c, &s, portleak);
    panic_check(c, &s, portleak);
}

fn usage_checks(c: &mut Checker, s: &Session, portleak: Call, help: Call) {
    let mut plain = String::new();
    c.check("-h prints usage (text)", || {
        s.engine.behaviour.borrow_mut().prefer_dml = false;
        let run = s.run(portleak, "-h");
        sane(&run)?;
        expect_hr(&run, S_OK)?;
        if run.records.iter().any(|r| r.dml) {
            return Err("DML output although the engine does not prefer DML".into());
        }
        plain = visible(&run.records, DEBUG_OUTPUT_NORMAL)?;
        for needle in [
            "Usage: !portleak",
            "-endpoints",
            "-process",
            "-json",
            "-state",
            "TIME_WAIT",
        ] {
            if !plain.contains(needle) {
                return Err(format!("usage lacks {needle:?}"));
            }
        }
        if plain.contains("<link") {
            return Err("plain text contains DML tags".into());
        }
        Ok(())
    });
    c.check(
        "-h prints usage (DML, links well-formed, same visible text)",
        || {
            s.engine.behaviour.borrow_mut().prefer_dml = true;
            let run = s.run(portleak, "-?");
            s.engine.behaviour.borrow_mut().prefer_dml = false;
            sane(&run)?;
            expect_hr(&run, S_OK)?;
            if !run.records.iter().all(|r| r.dml) {
                return Err("not all records are DML".into());
            }
            let mut links = Vec::new();
            for r in &run.records {
                links.extend(read_dml(&r.text)?.1);
            }
            if !links
                .iter()
                .any(|l| l.cmd == "!portleak -endpoints -state TIME_WAIT")
            {
                return Err(format!("expected an example link, got {links:?}"));
            }
            let dml_text = visible(&run.records, DEBUG_OUTPUT_NORMAL)?;
            if dml_text != plain {
                return Err("the DML text differs from the plain text".into());
            }
            Ok(())
        },
    );
    c.check("!help equals -h", || {
        let run = s.run(help, "");
        sane(&run)?;
        expect_hr(&run, S_OK)?;
        if visible(&run.records, DEBUG_OUTPUT_NORMAL)? != plain {
            return Err("!help output differs from !portleak -h".into());
        }
        Ok(())
    });
}

fn argument_errors(c: &mut Checker, s: &Session, portleak: Call) {
    let cases = [
        ("-bogus", "unknown option '-bogus'"),
        ("-endpoints -state sleepy", "-state sleepy"),
        ("-endpoints -proto icmp", "-proto icmp"),
        ("-pid 4", "'-pid' only filters -endpoints"),
        ("-process", "'-process' needs a value"),
        ("-report -process 4", "cannot be used together"),
        ("-process 0x7ff600001000", "kernel-mode address"),
        ("-json \"unterminated", "unterminated quote"),
    ];
    for (args, needle) in cases {
        c.check(&format!("argument error: {args}"), || {
            let run = s.run(portleak, args);
            sane(&run)?;
            expect_hr(&run, E_INVALIDARG)?;
            let err = visible(&run.records, DEBUG_OUTPUT_ERROR)?;
            if !err.contains(needle) || !err.contains("!portleak -h") {
                return Err(format!(
                    "error output {err:?} lacks {needle:?} or the usage hint"
                ));
            }
            if !visible(&run.records, DEBUG_OUTPUT_NORMAL)?.is_empty() {
                return Err("normal output besides the error".into());
            }
            Ok(())
        });
    }
}

fn panic_check(c: &mut Checker, s: &Session, portleak: Call) {
    c.check(
        "panic inside a command -> E_FAIL + message, references released",
        || {
            std::env::set_var("PORTLEAK_EXT_TEST_PANIC", "1");
            let run = s.run(portleak, "-report");
            std::env::remove_var("PORTLEAK_EXT_TEST_PANIC");
            sane(&run)?;
            expect_hr(&run, E_FAIL)?;
            let err = visible(&run.records, DEBUG_OUTPUT_ERROR)?;
            if !err.contains("internal error")
                || !err.contains("panicking on purpose")
                || !err.contains(".rs:")
            {
                return Err(format!(
                    "error output {err:?} lacks the panic message and location"
                ));
            }
            Ok(())
        },
    );
    c.check("the DLL still works after a panic", || {
        let run = s.run(portleak, "-h");
        sane(&run)?;
        expect_hr(&run, S_OK)
    });
}
