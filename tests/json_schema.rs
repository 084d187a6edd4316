//! The JSON document keeps the documented shape (docs/JSON.md): required keys, their types, and
//! addresses as hex strings.

use portleak::analysis::{analyze, Options, SCHEMA_VERSION};
use portleak::offline::OfflineTarget;
use serde_json::Value;
use std::sync::Arc;
use symbols::{SymbolCache, SymbolPath};

fn is_hex(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.starts_with("0x") && u64::from_str_radix(&s[2..], 16).is_ok())
}

#[test]
fn report_json_matches_the_documented_schema() {
    let scenario =
        synth::Scenario::from_toml(synth::scenarios::get("e-win11-healthy").unwrap()).unwrap();
    let dir = std::env::temp_dir().join(format!("portleak-json-{}", std::process::id()));
    let built = synth::build(&scenario, &dir).unwrap();
    let d = dumps::Dump::open(&built.dump).unwrap();
    let t = OfflineTarget::new(
        &d,
        SymbolPath::parse(&format!("srv*{}", built.symbols_dir.display())),
        Arc::new(SymbolCache::new()),
    );
    let a = analyze(&t, &Options::default());
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
