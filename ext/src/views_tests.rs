use crate::command::{run, Cmd, Outcome};
use crate::markup::{Buffered, Emit, Mask};
use portleak::kernel::EprocessOffsets;
use portleak::render::PlainText;
use portleak::testing::MemTarget;
use portleak::{ModuleInfo, Target};

const NT: u64 = 0xFFFF_F800_1000_0000;
const HEAD: u64 = NT + 0x2000;
const PROCS: u64 = 0xFFFF_C000_0100_0000;
const EPROCESS_OFFSETS: EprocessOffsets = EprocessOffsets {
    unique_process_id: 0x2e8,
    active_process_links: 0x2f0,
    create_time: 0x300,
    exit_time: 0x308,
    image_file_name: 0x450,
    inherited_from: 0x3e0,
};

/// A kernel with a process list of three (System, and two with hostile names) and nothing else.
fn kernel() -> MemTarget {
    let mut t = MemTarget::new();
    t.modules = vec![ModuleInfo {
        name: "nt".into(),
        image_name: "ntoskrnl.exe".into(),
        base: NT,
        size: 0x100_0000,
        timestamp: 1,
        file_version: Some([10, 0, 17763, 1]),
    }];
    t.build = Some(17763);
    let procs = [(4, "System"), (1234, "100%s<&\">.exe"), (88, "svc.exe")];
    let procs: Vec<(u64, &str, u64)> = (0u64..)
        .zip(procs)
        .map(|(i, (pid, name))| (pid, name, PROCS + i * 0x1000))
        .collect();
    t.add_process_list(HEAD, &EPROCESS_OFFSETS, &procs);
    t
}

#[derive(Default)]
struct Rec(Vec<(Mask, bool, String)>);
impl Emit for Rec {
    fn emit(&mut self, mask: Mask, dml: bool, chunk: &str) {
        self.0.push((mask, dml, chunk.to_string()));
    }
}

fn exec(t: MemTarget, line: &str, dml: bool) -> (Outcome, Vec<(Mask, bool, String)>) {
    let mut out = Buffered::new(Rec::default(), dml);
    let mut slot = Some(t);
    let mut connect = || {
        slot.take()
            .map(|t| Box::new(t) as Box<dyn Target>)
            .ok_or_else(|| "connected twice".to_string())
    };
    let o = run(Cmd::Portleak, line, &mut connect, &mut out);
    (o, out.finish().0)
}

fn text(recs: &[(Mask, bool, String)], mask: Mask) -> String {
    recs.iter()
        .filter(|r| r.0 == mask)
        .map(|r| r.2.as_str())
        .collect()
}

#[test]
fn report_is_the_engine_report() {
    let (o, recs) = exec(kernel(), "-report", false);
    assert_eq!(o, Outcome::Done);
    let a = portleak::analysis::analyze(&kernel(), &Default::default());
    let mut want = PlainText::default();
    portleak::report::report(&a, &mut want);
    assert_eq!(text(&recs, Mask::Normal), want.0);
    assert!(
        want.0.contains("Processes     3"),
        "the fixture's process list is walked:\n{}",
        want.0
    );
}

#[test]
fn process_view_by_pid_and_by_eprocess_escapes_names_in_dml() {
    let (o, recs) = exec(kernel(), "-process 1234", true);
    assert_eq!(o, Outcome::Done);
    let t = text(&recs, Mask::Normal);
    assert!(
        t.contains("<b>Process 1234 (100%s&lt;&amp;&quot;&gt;.exe)</b>"),
        "{t}"
    );
    assert!(
        t.contains(&format!(
            "<link cmd=\"dt nt!_EPROCESS {:#x}\">",
            PROCS + 0x1000
        )),
        "{t}"
    );
    let (o2, recs2) = exec(kernel(), &format!("-process {:#x}", PROCS + 0x1000), true);
    assert_eq!(o2, Outcome::Done);
    assert_eq!(text(&recs2, Mask::Normal), t);
}

#[test]
fn unknown_process_is_an_error_naming_it() {
    let (o, recs) = exec(kernel(), "-process 77", false);
    assert_eq!(o, Outcome::Failed);
    let e = text(&recs, Mask::Error);
    assert!(
        e.contains("no process id 77") && e.contains("3 processes"),
        "{e}"
    );
}

#[test]
fn interruption_gives_a_partial_report_that_says_so() {
    let mut t = kernel();
    t.interrupt_after = Some(1);
    let (o, recs) = exec(t, "", false);
    assert_eq!(o, Outcome::Partial);
    assert!(text(&recs, Mask::Normal).contains("PARTIAL RESULT"));
    assert!(text(&recs, Mask::Warning).contains("interrupted (Ctrl+Break)"));
}

#[test]
fn json_alone_writes_only_the_file() {
    let path = std::env::temp_dir().join(format!("portleak-ext-test-{}.json", std::process::id()));
    let (o, recs) = exec(kernel(), &format!("-json \"{}\"", path.display()), false);
    assert_eq!(o, Outcome::Done);
    let body = std::fs::read_to_string(&path).expect("JSON file written");
    let _ = std::fs::remove_file(&path);
    assert!(body.contains("\"schema_version\""));
    assert!(
        body.contains("100%s<&\\\">.exe"),
        "names are JSON-escaped, not DML-escaped"
    );
    let t = text(&recs, Mask::Normal);
    assert!(
        t.starts_with("Wrote the analysis") && t.lines().count() == 1,
        "{t}"
    );
}

#[test]
fn json_to_a_bad_path_fails_and_names_it() {
    let (o, recs) = exec(kernel(), "-json /nonexistent-dir/x/y.json -report", false);
    assert_eq!(o, Outcome::Failed);
    assert!(text(&recs, Mask::Error).contains("-json /nonexistent-dir/x/y.json"));
    assert!(
        text(&recs, Mask::Normal).contains("VERDICT"),
        "the requested view is still shown"
    );
}

#[test]
fn endpoints_filter_and_verbose_details() {
    let (o, recs) = exec(kernel(), "-endpoints -proto tcp -v", false);
    assert_eq!(o, Outcome::Done);
    let t = text(&recs, Mask::Normal);
    assert!(
        t.contains("0 endpoints") && t.contains("DETAILS (-v)") && t.contains("warning "),
        "{t}"
    );
}

#[test]
fn help_bad_arguments_and_connection_failures() {
    let mut out = Buffered::new(Rec::default(), false);
    let mut never =
        || -> Result<Box<dyn Target>, String> { panic!("help must not connect to the target") };
    assert_eq!(
        run(Cmd::Help, "ignored", &mut never, &mut out),
        Outcome::Done
    );
    assert_eq!(
        run(Cmd::Portleak, "-?", &mut never, &mut out),
        Outcome::Done
    );
    assert_eq!(
        run(Cmd::Portleak, "-endpoints -pid", &mut never, &mut out),
        Outcome::BadArgs
    );
    let recs = out.finish().0;
    let usage = text(&recs, Mask::Normal);
    assert_eq!(usage.matches("Usage: !portleak").count(), 2);
    let err = text(&recs, Mask::Error);
    assert_eq!(
        err,
        "!portleak: '-pid' needs a value\nType !portleak -h for usage.\n"
    );

    let mut out = Buffered::new(Rec::default(), false);
    let mut refuse = || -> Result<Box<dyn Target>, String> {
        Err("the debugger does not provide IDebugSymbols3".into())
    };
    assert_eq!(
        run(Cmd::Portleak, "", &mut refuse, &mut out),
        Outcome::Failed
    );
    assert!(text(&out.finish().0, Mask::Error).contains("IDebugSymbols3"));
}
