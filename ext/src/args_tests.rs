use super::*;
use portleak::model::{Protocol, TcpState};

fn ok(line: &str) -> Invocation {
    parse(line).unwrap_or_else(|e| panic!("{line:?} should parse: {e}"))
}

fn err(line: &str) -> String {
    match parse(line) {
        Ok(i) => panic!("{line:?} should fail, parsed as {i:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn empty_line_is_the_report() {
    let i = ok("   ");
    assert_eq!(i.view, View::Report);
    assert!(!i.view_given && !i.verbose && i.json.is_none());
}

#[test]
fn views_and_flags() {
    assert_eq!(ok("-report -v").view, View::Report);
    assert!(ok("-report -v").verbose);
    assert_eq!(ok("/?").view, View::Help);
    assert_eq!(ok("-H").view, View::Help);
    assert_eq!(
        ok("-process 1234").view,
        View::Process(ProcessRef::Pid(1234))
    );
    assert_eq!(
        ok("-process 0n1234").view,
        View::Process(ProcessRef::Pid(1234))
    );
    assert_eq!(
        ok("-process 0x4d2").view,
        View::Process(ProcessRef::Pid(1234))
    );
    assert_eq!(
        ok("-process ffffa08f`1c2d3080").view,
        View::Process(ProcessRef::Eprocess(0xffff_a08f_1c2d_3080))
    );
    assert_eq!(
        ok("-process 0xFFFFA08F1C2D3080").view,
        View::Process(ProcessRef::Eprocess(0xffff_a08f_1c2d_3080))
    );
}

#[test]
fn endpoint_filters() {
    let i = ok("-endpoints -pid 0n88 -state time_wait -proto TCP");
    assert_eq!(
        i.view,
        View::Endpoints(EndpointFilter {
            pid: Some(88),
            state: Some(TcpState::TimeWait),
            proto: Some(Protocol::Tcp)
        })
    );
    // Filters may come before the view.
    let j = ok("-proto udp -endpoints");
    assert_eq!(
        j.view,
        View::Endpoints(EndpointFilter {
            proto: Some(Protocol::Udp),
            ..Default::default()
        })
    );
}

#[test]
fn json_paths_with_spaces_and_backslashes() {
    let i = ok(r#"-json "C:\My Dumps\out dir\" -report"#);
    assert_eq!(i.json.as_deref(), Some(r"C:\My Dumps\out dir\"));
    assert_eq!(i.view, View::Report);
    assert!(i.view_given);
    let j = ok(r"-json c:\t\p.json");
    assert_eq!(j.json.as_deref(), Some(r"c:\t\p.json"));
    assert!(!j.view_given);
}

#[test]
fn errors_name_the_argument() {
    assert_eq!(err("-bogus"), "unknown option '-bogus'");
    assert_eq!(err("-pid"), "'-pid' needs a value");
    assert!(err("-endpoints -pid xyz").starts_with("-pid xyz: not a number"));
    assert!(err("-endpoints -pid abc").contains("bare hex is ambiguous"));
    assert!(err("-endpoints -pid 1a2c").contains("0x"));
    assert!(err("-endpoints -pid 0x100000000").contains("too large"));
    assert!(err("-endpoints -state sleepy").contains("TIME_WAIT"));
    assert!(err("-endpoints -proto icmp").starts_with("-proto icmp:"));
    assert_eq!(
        err("-report -process 4"),
        "'-report' and '-process' cannot be used together"
    );
    assert_eq!(err("-report -report"), "'-report' is given twice");
    assert_eq!(
        err("-pid 4"),
        "'-pid' only filters -endpoints; add -endpoints"
    );
    assert_eq!(
        err("-process 4 -state listen"),
        "'-state' only filters -endpoints; add -endpoints"
    );
    assert_eq!(
        err("report"),
        "unexpected argument 'report' (options start with '-')"
    );
    assert_eq!(err("-json"), "'-json' needs a value");
    assert_eq!(err("-json -report"), "'-json' needs a value");
    assert_eq!(err("-json \"a b"), "unterminated quote in the command line");
    assert!(err("-process 0x7ff612340000").contains("kernel-mode address"));
    assert!(err("-process zz").contains("not a process id"));
    assert_eq!(
        err("-h -json x"),
        "'-h' and '-json' cannot be used together"
    );
}

#[test]
fn tokenizer() {
    assert_eq!(
        tokenize("  a  \"b c\"d \t e").unwrap(),
        vec!["a", "b cd", "e"]
    );
    assert_eq!(tokenize("\"\"").unwrap(), vec![""]);
    assert!(tokenize("").unwrap().is_empty());
}

#[test]
fn range_and_delay_reach_the_engine_options() {
    let inv = ok("-report -range 10000-65535 -delay 120");
    let o = inv.options();
    assert_eq!(
        o.dynamic_range.map(|r| (r.start, r.count)),
        Some((10000, 55536))
    );
    assert_eq!(o.time_wait_delay, Some(120));
    assert!(matches!(
        parse("-range 65535-100"),
        Err(ArgError::BadValue {
            option: "-range",
            ..
        })
    ));
    assert!(matches!(
        parse("-delay soon"),
        Err(ArgError::BadValue {
            option: "-delay",
            ..
        })
    ));
    assert!(matches!(
        parse("-range 1-2 -range 3-4"),
        Err(ArgError::Repeated("-range"))
    ));
    assert_eq!(
        ok("-endpoints -range 20000-30000")
            .options()
            .dynamic_range
            .map(|r| r.start),
        Some(20000)
    );
}
