//! Markdown rendering of the tables, so docs/LAYOUTS.md's coverage and conflict sections are
//! generated from the data (a test keeps the committed copy current).

use super::types::{Confidence, Offset};
use super::{afd, nt, supported_builds, tcpip, LayoutError, MatchKind};
use std::fmt::Write;

fn quality(q: super::TableQuality) -> &'static str {
    match q {
        super::TableQuality::Exact => "exact",
        super::TableQuality::Inferred => "inferred",
        super::TableQuality::Conflicting => "conflicting",
    }
}

fn how(k: MatchKind) -> &'static str {
    match k {
        MatchKind::Exact => "",
        MatchKind::SameFamily => " (family)",
        MatchKind::NearestOlder => " (nearest older)",
    }
}

/// The per-build coverage table and the list of disputed or inferred fields, as Markdown.
pub fn coverage_markdown() -> Result<String, LayoutError> {
    let mut s = String::new();
    s.push_str("| build | tcpip table | tcpip | afd table | afd | nt table | nt |\n");
    s.push_str("|---|---|---|---|---|---|---|\n");
    for b in supported_builds()? {
        let t = tcpip(b, None)?;
        let a = afd(b)?;
        let n = nt(b)?;
        let _ = writeln!(
            s,
            "| {b} | {}{} | {} | {}{} | {} | {}{} | {} |",
            t.id,
            how(t.matched.kind),
            quality(t.quality),
            a.id,
            how(a.matched.kind),
            quality(a.quality),
            n.id,
            how(n.matched.kind),
            quality(n.quality),
        );
    }
    s.push_str(
        "\nBuild 9600 without a tcpip.sys version resolves to `w9600-anyrev`, the union of ",
    );
    s.push_str("`w9600` and `w9600r19935`.\n\n");

    s.push_str("### Disputed [!] and inferred [I] fields, per tcpip table\n\n");
    s.push_str("| table | field | candidates (preferred first) | mark | sources |\n");
    s.push_str("|---|---|---|---|---|\n");
    for t in super::tcpip_tables()? {
        let mut rows: Vec<(String, &Offset)> = Vec::new();
        for st in t.structs() {
            for f in st.fields() {
                rows.push((format!("{}.{}", st.struct_name(), f.name), f.offset));
            }
        }
        // Offsets that belong to the small structures around the port pool and partitions.
        let pp = &t.port_pool;
        for (name, o) in [
            ("_PARTITION stride", &t.partition.stride),
            (
                "_INET_COMPARTMENT_SET.InetCompartment",
                &pp.compartment_set_inet,
            ),
            (
                "_INET_COMPARTMENT.ProtocolCompartment",
                &pp.compartment_protocol,
            ),
            ("_PROTOCOL_COMPARTMENT.PortPool", &pp.protocol_port_pool),
            ("_PORT_ASSIGNMENT.InPaBigPoolBase", &pp.inpa_entries),
            ("_PORT_ASSIGNMENT_ENTRY stride", &pp.entry_stride),
            ("_PORT_ASSIGNMENT_ENTRY.Entry", &pp.entry_ptr),
        ] {
            rows.push((name.to_string(), o));
        }
        for (name, o) in rows {
            if matches!(o.confidence, Confidence::Conflicting | Confidence::Inferred) {
                let c: Vec<String> = o.candidates.iter().map(|c| format!("{c:#x}")).collect();
                let _ = writeln!(
                    s,
                    "| {} | {name} | {} | {} | {} |",
                    t.id,
                    c.join(", "),
                    o.confidence.mark(),
                    o.source.replace('|', "/"),
                );
            }
        }
    }
    Ok(s)
}
