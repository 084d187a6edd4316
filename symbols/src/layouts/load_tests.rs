//! Loader behaviour on malformed data: every defect must come back as a `LayoutError::Data`
//! naming the file and table, never a panic.

use super::build;
use crate::layouts::LayoutError;

fn err(files: &[(&str, &str)]) -> String {
    match build(files) {
        Err(LayoutError::Data { file, message }) => format!("{file}: {message}"),
        Err(e) => panic!("unexpected error kind: {e}"),
        Ok(_) => panic!("malformed data was accepted"),
    }
}

#[test]
fn inheritance_cycles_and_unknown_bases_are_rejected() {
    let cyc = "[afd.a]\ninherit = \"b\"\n[afd.b]\ninherit = \"a\"\n";
    assert!(err(&[("x.toml", cyc)]).contains("inheritance cycle"));
    let unknown = "[nt.a]\ninherit = \"zz\"\n";
    assert!(err(&[("x.toml", unknown)]).contains("inherits unknown table zz"));
}

#[test]
fn duplicate_ids_and_unknown_kinds_are_rejected() {
    let a = "[afd.a]\nbuilds = [1]\n";
    assert!(err(&[("x.toml", a), ("y.toml", a)]).contains("afd.a is defined twice"));
    assert!(err(&[("x.toml", "[bogus.a]\n")]).contains("unknown top-level table [bogus]"));
}

#[test]
fn bad_offsets_are_rejected() {
    let empty = "[nt.a.kuser]\nx = { at = [], src = \"s\", conf = \"C\" }\n";
    assert!(err(&[("x.toml", empty)]).contains("no candidate offsets"));
    let dup = "[nt.a.kuser]\nx = { at = [8, 8], src = \"s\", conf = \"C\" }\n";
    assert!(err(&[("x.toml", dup)]).contains("listed twice"));
    let neg = "[nt.a.kuser]\nx = { at = [-1], src = \"s\", conf = \"C\" }\n";
    assert!(err(&[("x.toml", neg)]).contains("is not a u32"));
    let step =
        "[afd.a.endpoint]\ns = { start = 0, end = 8, step = 0, src = \"s\", conf = \"C\" }\n";
    assert!(err(&[("x.toml", step)]).contains("scan step must be positive"));
}

#[test]
fn v3_placeholder_needs_a_json_name() {
    let t = "[tcpip.a.tcb]\nstate = { at = [0x6C], src = \"V3-J:{v3}\", conf = \"C\" }\n";
    assert!(err(&[("x.toml", t)]).contains("has no v3_json"));
}

#[test]
fn unset_of_a_missing_item_is_rejected() {
    let t = "[afd.a]\nunset = [\"endpoint.provider\"]\n";
    assert!(err(&[("x.toml", t)]).contains("unset endpoint.provider"));
}

#[test]
fn incomplete_tables_name_the_missing_field() {
    let t = "[afd.a]\nbuilds = [1]\nquality = \"exact\"\nsummary = \"s\"\n";
    let e = err(&[("x.toml", t)]);
    assert!(e.starts_with("x.toml: a:") && e.contains("endpoint"), "{e}");
}

#[test]
fn garbage_is_a_parse_error_not_a_panic() {
    assert!(err(&[("x.toml", "[[[")]).starts_with("x.toml: TOML parse error"));
}
