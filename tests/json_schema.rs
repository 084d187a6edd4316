//! The JSON document keeps the documented shape (docs/JSON.md): required keys, their types, and
//! addresses as hex strings.

mod common;

use portleak::analysis::SCHEMA_VERSION;
use serde_json::Value;

fn is_hex(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.starts_with("0x") && u64::from_str_radix(&s[2..], 16).is_ok())
}

#[test]
fn report_json_matches_the_documented_schema() {
    let (built, dir) = common::build("e-win11-healthy", "json");
    let a = common::analyze_dump(&built.dump, &built.symbols_dir).unwrap();
    let v: Value = serde_json::from_str(&portleak::report::json(&a)).unwrap();
    assert_eq!(v["schema_version"], SCHEMA_VERSION);
    for key in [
        "portleak_version",
        "system",
        "verdict",
        "findings",
        "capacity",
        "states",
        "owners",
        "remotes",
        "remote_networks",
        "time_wait",
        "afd",
        "next_steps",
        "processes",
        "endpoints",
        "warnings",
        "notes",
        "partial",
    ] {
        assert!(v.get(key).is_some(), "missing key {key}");
    }
    assert!(["exhausted", "at_risk", "healthy"].contains(&v["verdict"]["level"].as_str().unwrap()));
    assert!(v["system"]["clock"]["system_time"].is_u64());
    assert!(is_hex(&v["system"]["tcpip"]["base"]));
    for c in v["capacity"].as_array().unwrap() {
        assert!(["tcp", "udp"].contains(&c["protocol"].as_str().unwrap()));
        assert!(
            c["range"]["start"].is_u64()
                && c["range"]["count"].is_u64()
                && c["percent_used"].is_f64()
        );
    }
    let e = &v["endpoints"][0];
    for key in [
        "protocol",
        "state",
        "local_ip",
        "local_port",
        "remote_ip",
        "remote_port",
        "owner",
        "owner_source",
        "object",
        "kind",
        "pool_tag",
        "time",
        "found_via",
    ] {
        assert!(e.get(key).is_some(), "endpoint lacks {key}");
    }
    assert!(is_hex(&e["object"]));
    assert!(v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| is_hex(&p["eprocess"])));
    assert!(v["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["owner"]["kind"].is_string()));
    let _ = std::fs::remove_dir_all(dir);
}
