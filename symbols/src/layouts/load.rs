//! Parsing of the embedded TOML tables, once, on first use.
//!
//! Each data file holds `[tcpip.<id>]`, `[afd.<id>]` and `[nt.<id>]` tables. A table may name
//! `inherit = "<id>"` to start from another table of the same kind (struct-level merge: a field
//! given in the child replaces the base's field whole) and `unset = ["syn", "tcb.create_time"]`
//! to drop inherited optional items. Identity keys (builds, family, revisions, quality,
//! summary) are never inherited.

use super::afd::AfdLayout;
use super::nt::NtLayout;
use super::tcpip::TcpipLayout;
use super::LayoutError;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use toml::{Table, Value};

/// The embedded data files, by name (the name appears in error messages and docs).
pub(crate) const FILES: &[(&str, &str)] = &[
    (
        "tcpip-nt6.toml",
        include_str!("../../layouts/tcpip-nt6.toml"),
    ),
    (
        "tcpip-win10.toml",
        include_str!("../../layouts/tcpip-win10.toml"),
    ),
    (
        "tcpip-win11.toml",
        include_str!("../../layouts/tcpip-win11.toml"),
    ),
    ("afd.toml", include_str!("../../layouts/afd.toml")),
    ("nt.toml", include_str!("../../layouts/nt.toml")),
];

const IDENTITY_KEYS: &[&str] = &[
    "v3_json",
    "builds",
    "family",
    "tcpip_revision_min",
    "tcpip_revision_below",
    "quality",
    "summary",
    "inherit",
    "unset",
];

/// Inheritance chains longer than this are treated as cycles.
const MAX_INHERIT_DEPTH: usize = 16;

/// All parsed tables.
#[derive(Debug)]
pub(crate) struct Registry {
    pub tcpip: Vec<TcpipLayout>,
    /// Per table build with several tcpip-revision variants: the union of the variants, used
    /// when the tcpip.sys file version is unknown (candidates of the newest revision first).
    pub tcpip_any_revision: BTreeMap<u32, TcpipLayout>,
    pub afd: Vec<AfdLayout>,
    pub nt: Vec<NtLayout>,
}

pub(crate) fn registry() -> Result<&'static Registry, LayoutError> {
    static REG: OnceLock<Result<Registry, LayoutError>> = OnceLock::new();
    REG.get_or_init(|| build(FILES))
        .as_ref()
        .map_err(Clone::clone)
}

fn data_err(file: &str, message: impl Into<String>) -> LayoutError {
    LayoutError::Data {
        file: file.to_string(),
        message: message.into(),
    }
}

/// Parses and resolves a set of data files (public to the crate for tests of the loader).
pub(crate) fn build(files: &[(&str, &str)]) -> Result<Registry, LayoutError> {
    // kind -> id -> (file, raw table)
    let mut raw: BTreeMap<&str, BTreeMap<String, (String, Table)>> = BTreeMap::new();
    for (file, text) in files {
        let doc: Table = toml::from_str(text).map_err(|e| data_err(file, e.to_string()))?;
        for (kind, v) in doc {
            let kind = match kind.as_str() {
                "tcpip" => "tcpip",
                "afd" => "afd",
                "nt" => "nt",
                other => return Err(data_err(file, format!("unknown top-level table [{other}]"))),
            };
            let Value::Table(entries) = v else {
                return Err(data_err(file, format!("[{kind}] is not a table")));
            };
            for (id, e) in entries {
                let Value::Table(t) = e else {
                    return Err(data_err(file, format!("{kind}.{id} is not a table")));
                };
                let map = raw.entry(kind).or_default();
                if map.contains_key(&id) {
                    return Err(data_err(file, format!("{kind}.{id} is defined twice")));
                }
                map.insert(id, (file.to_string(), t));
            }
        }
    }

    let mut reg = Registry {
        tcpip: Vec::new(),
        tcpip_any_revision: BTreeMap::new(),
        afd: Vec::new(),
        nt: Vec::new(),
    };
    for (kind, map) in &raw {
        let mut memo = BTreeMap::new();
        let mut tables = Vec::with_capacity(map.len());
        for (id, (file, own)) in map {
            let mut t = inheritable(map, id, kind, &mut memo, 0)?;
            for (k, v) in own {
                if IDENTITY_KEYS.contains(&k.as_str()) && k != "inherit" && k != "unset" {
                    t.insert(k.clone(), v.clone());
                }
            }
            expand_v3_table(&mut t).map_err(|m| data_err(file, format!("{kind}.{id}: {m}")))?;
            let mut path = vec![*kind, id.as_str()];
            validate_table(&t, &mut path).map_err(|m| data_err(file, m))?;
            tables.push((id.clone(), file.clone(), t));
        }
        match *kind {
            "tcpip" => {
                reg.tcpip_any_revision = revision_unions(&tables)?;
                for (id, file, t) in tables {
                    reg.tcpip.push(mark_udp(decode(&file, &id, t)?));
                }
            }
            "afd" => {
                for (id, file, t) in tables {
                    reg.afd.push(decode(&file, &id, t)?);
                }
            }
            _ => {
                for (id, file, t) in tables {
                    reg.nt.push(decode(&file, &id, t)?);
                }
            }
        }
    }
    Ok(reg)
}

fn mark_udp(mut t: TcpipLayout) -> TcpipLayout {
    if let Some(u) = t.local_address_udp.as_mut() {
        u.win10_udp = true;
    }
    t
}

fn decode<T: serde::de::DeserializeOwned>(
    file: &str,
    id: &str,
    mut t: Table,
) -> Result<T, LayoutError> {
    t.insert("id".into(), Value::String(id.to_string()));
    // Through serde_json's value: toml's own `Value::try_into` cost ~2 ms per table here
    // (docs/PERFORMANCE.md, "symbols: built-in layouts"); serde_json's takes microseconds.
    serde_json::from_value(to_json(&Value::Table(t)))
        .map_err(|e| data_err(file, format!("{id}: {e}")))
}

fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::String(s) => J::String(s.clone()),
        Value::Integer(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::Boolean(b) => J::Bool(*b),
        Value::Datetime(d) => J::String(d.to_string()),
        Value::Array(a) => J::Array(a.iter().map(to_json).collect()),
        Value::Table(t) => J::Object(t.iter().map(|(k, x)| (k.clone(), to_json(x))).collect()),
    }
}

/// The table `id` as a base for inheritance: its chain merged root first, without identity
/// keys, with each level's `unset` applied; memoised so deep chains are merged once.
fn inheritable(
    map: &BTreeMap<String, (String, Table)>,
    id: &str,
    kind: &str,
    memo: &mut BTreeMap<String, Table>,
    depth: usize,
) -> Result<Table, LayoutError> {
    if let Some(t) = memo.get(id) {
        return Ok(t.clone());
    }
    let Some((file, own)) = map.get(id) else {
        return Err(data_err("?", format!("{kind}.{id} does not exist")));
    };
    if depth > MAX_INHERIT_DEPTH {
        return Err(data_err(
            file,
            format!("{kind}.{id}: inheritance cycle (or a chain deeper than {MAX_INHERIT_DEPTH})"),
        ));
    }
    let mut acc = match own.get("inherit").map(|b| (b, b.as_str())) {
        None => Table::new(),
        Some((_, Some(base))) if map.contains_key(base) => {
            inheritable(map, base, kind, memo, depth + 1)?
        }
        Some((b, _)) => {
            return Err(data_err(
                file,
                format!(
                    "{kind}.{id} inherits unknown table {}",
                    b.as_str().unwrap_or("(not a string)")
                ),
            ));
        }
    };
    for (k, v) in own {
        if IDENTITY_KEYS.contains(&k.as_str()) {
            continue;
        }
        match (acc.get_mut(k), v) {
            // Layout-level tables are structs: merge them field by field; a field's own value
            // (an offset record, a list of paths) replaces the base's whole.
            (Some(Value::Table(a)), Value::Table(b)) => {
                for (fk, fv) in b {
                    a.insert(fk.clone(), fv.clone());
                }
            }
            _ => {
                acc.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(unset) = own.get("unset").and_then(Value::as_array) {
        for path in unset {
            let Some(path) = path.as_str() else {
                return Err(data_err(
                    file,
                    format!("{kind}.{id}: unset entries must be strings"),
                ));
            };
            remove_path(&mut acc, path).map_err(|m| data_err(file, format!("{kind}.{id}: {m}")))?;
        }
    }
    memo.insert(id.to_string(), acc.clone());
    Ok(acc)
}

/// Inherited source strings cite the JSON of the table they end up in, so a value carried from
/// 19041 into 20348 names 20348's file; without a JSON the placeholder is an error, which forces
/// tables beyond volatility3's coverage to restate their sources.
fn expand_v3_table(t: &mut Table) -> Result<(), String> {
    let v3 = t.get("v3_json").and_then(Value::as_str).map(str::to_string);
    t.iter_mut()
        .try_for_each(|(_, x)| expand_v3(x, v3.as_deref()))
}

fn expand_v3(v: &mut Value, v3: Option<&str>) -> Result<(), String> {
    match v {
        Value::Table(t) => {
            for (k, x) in t.iter_mut() {
                match x {
                    Value::String(s) if k == "src" && s.contains("{v3}") => {
                        let json = v3.ok_or_else(|| {
                            format!("source {s:?} cites {{v3}} but the table has no v3_json")
                        })?;
                        *s = s.replace("{v3}", json);
                    }
                    _ => expand_v3(x, v3)?,
                }
            }
            Ok(())
        }
        Value::Array(a) => a.iter_mut().try_for_each(|x| expand_v3(x, v3)),
        _ => Ok(()),
    }
}

fn remove_path(t: &mut Table, path: &str) -> Result<(), String> {
    match path.split_once('.') {
        None => t
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| format!("unset {path}: not present")),
        Some((head, rest)) => match t.get_mut(head) {
            Some(Value::Table(inner)) => remove_path(inner, rest),
            _ => Err(format!("unset {path}: {head} is not a table")),
        },
    }
}

/// Checks every offset record: candidates present, distinct, within u32; scan steps non-zero;
/// at most four dereferences per address path. `path` names the location for messages.
fn validate_table<'a>(t: &'a Table, path: &mut Vec<&'a str>) -> Result<(), String> {
    let at = |path: &[&str]| path.join(".");
    if let Some(c) = t.get("at") {
        let arr = c
            .as_array()
            .ok_or_else(|| format!("{}: `at` is not an array", at(path)))?;
        if arr.is_empty() {
            return Err(format!("{}: no candidate offsets", at(path)));
        }
        let mut seen = Vec::with_capacity(arr.len());
        for x in arr {
            let n = x.as_integer().filter(|n| (0..=u32::MAX as i64).contains(n));
            let n = n.ok_or_else(|| format!("{}: candidate {x} is not a u32", at(path)))?;
            if seen.contains(&n) {
                return Err(format!("{}: candidate {n:#x} listed twice", at(path)));
            }
            seen.push(n);
        }
    }
    if t.contains_key("start") && t.get("step").and_then(Value::as_integer).unwrap_or(0) <= 0 {
        return Err(format!("{}: scan step must be positive", at(path)));
    }
    if t.get("derefs")
        .and_then(Value::as_array)
        .is_some_and(|d| d.len() > 4)
    {
        return Err(format!("{}: more than four dereferences", at(path)));
    }
    for (k, x) in t {
        path.push(k);
        let r = match x {
            Value::Table(inner) => validate_table(inner, path),
            Value::Array(a) => a.iter().try_for_each(|e| match e {
                Value::Table(inner) => validate_table(inner, path),
                _ => Ok(()),
            }),
            _ => Ok(()),
        };
        path.pop();
        r?;
    }
    Ok(())
}

/// Builds, for each build with several revision variants, the union of the variants.
fn revision_unions(
    tables: &[(String, String, Table)],
) -> Result<BTreeMap<u32, TcpipLayout>, LayoutError> {
    let mut by_build: BTreeMap<u32, Vec<&(String, String, Table)>> = BTreeMap::new();
    for e in tables {
        if let Some(b) =
            e.2.get("builds")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
        {
            if let Some(b) = b.as_integer().and_then(|b| u32::try_from(b).ok()) {
                by_build.entry(b).or_default().push(e);
            }
        }
    }
    let mut out = BTreeMap::new();
    for (build, mut variants) in by_build {
        if variants.len() < 2 {
            continue;
        }
        // Newest revision first: its candidates become the preferred ones.
        variants.sort_by_key(|(_, _, t)| {
            std::cmp::Reverse(
                t.get("tcpip_revision_min")
                    .and_then(Value::as_integer)
                    .unwrap_or(0),
            )
        });
        let (first_id, file, first) = variants[0];
        let mut acc = Value::Table(first.clone());
        let mut ids = vec![first_id.clone()];
        for (id, _, t) in &variants[1..] {
            acc = union(&acc, &Value::Table(t.clone()));
            ids.push(id.clone());
        }
        let Value::Table(mut t) = acc else { continue };
        t.remove("tcpip_revision_min");
        t.remove("tcpip_revision_below");
        t.insert("quality".into(), Value::String("conflicting".into()));
        t.insert(
            "summary".into(),
            Value::String(format!(
                "union of {} (tcpip.sys revision unknown; candidates of the newest revision first)",
                ids.join(" and ")
            )),
        );
        let id = format!("w{build}-anyrev");
        out.insert(build, mark_udp(decode(file, &id, t)?));
    }
    Ok(out)
}

fn union(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Table(ta), Value::Table(tb))
            if ta.contains_key("at") || ta.contains_key("tags") =>
        {
            let key = if ta.contains_key("at") { "at" } else { "tags" };
            let mut out = ta.clone();
            let (Some(Value::Array(xa)), Some(Value::Array(xb))) = (ta.get(key), tb.get(key))
            else {
                return a.clone();
            };
            let mut merged = xa.clone();
            for x in xb {
                if !merged.contains(x) {
                    merged.push(x.clone());
                }
            }
            if merged.len() != xa.len() {
                let sa = ta.get("src").and_then(Value::as_str).unwrap_or("");
                let sb = tb.get("src").and_then(Value::as_str).unwrap_or("");
                out.insert(
                    "src".into(),
                    Value::String(format!("{sa} | other revision: {sb}")),
                );
                out.insert("conf".into(), Value::String("!".into()));
                out.insert(key.into(), Value::Array(merged));
            }
            Value::Table(out)
        }
        (Value::Table(ta), Value::Table(tb)) => {
            let mut out = ta.clone();
            for (k, vb) in tb {
                let merged = match ta.get(k) {
                    Some(va) => union(va, vb),
                    None => vb.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Table(out)
        }
        (Value::Array(xa), Value::Array(xb)) if xa.iter().all(Value::is_table) => {
            let mut merged = xa.clone();
            for x in xb {
                if !merged.contains(x) {
                    merged.push(x.clone());
                }
            }
            Value::Array(merged)
        }
        _ => a.clone(),
    }
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
