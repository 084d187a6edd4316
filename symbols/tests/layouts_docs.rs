//! docs/LAYOUTS.md carries a generated section (coverage per build, disputed and inferred
//! fields); it must match the data. Regenerate with `PORTLEAK_UPDATE_DOCS=1 cargo test -p
//! portleak-symbols --test layouts_docs`.

use std::path::Path;

const BEGIN: &str = "<!-- BEGIN GENERATED: symbols::layouts::coverage_markdown -->\n";
const END: &str = "<!-- END GENERATED -->";

#[test]
fn layouts_doc_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/LAYOUTS.md");
    let doc = std::fs::read_to_string(&path).expect("docs/LAYOUTS.md exists");
    let (Some(b), Some(e)) = (doc.find(BEGIN), doc.find(END)) else {
        panic!("docs/LAYOUTS.md lacks the generated-section markers");
    };
    let generated = symbols::layouts::coverage_markdown().expect("tables load");
    let current = &doc[b + BEGIN.len()..e];
    if current != generated {
        if std::env::var("PORTLEAK_UPDATE_DOCS").is_ok_and(|v| v == "1") {
            let new = format!("{}{BEGIN}{generated}{}", &doc[..b], &doc[e..]);
            std::fs::write(&path, new).expect("write docs/LAYOUTS.md");
            return;
        }
        panic!("docs/LAYOUTS.md is stale: rerun with PORTLEAK_UPDATE_DOCS=1");
    }
}
