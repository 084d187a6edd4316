//! The views of `!portleak`: one analysis by the engine, rendered by the engine's renderers into
//! the extension's sink, so `!portleak -report` shows the characters `portleak report` prints.

use crate::args::{EndpointFilter, Invocation, ProcessRef, View};
use crate::command::{say_partial, Outcome};
use crate::markup::{Buffered, Emit, Mask};
use crate::usage;
use portleak::analysis::{analyze, Analysis};
use portleak::render::Markup;
use portleak::report::{self, Filter};
use portleak::Target;

pub fn execute<E: Emit>(inv: &Invocation, target: &dyn Target, out: &mut Buffered<E>) -> Outcome {
    let a = analyze(target, &inv.options());
    let mut failed = false;
    if let Some(path) = &inv.json {
        match std::fs::write(path, report::json(&a)) {
            Ok(()) => {
                // With -json alone this line is the whole output.
                out.text(&format!(
                    "Wrote the analysis ({} endpoints, verdict {}) as JSON to {path}\n",
                    a.endpoints.len(),
                    a.verdict.level.name()
                ));
            }
            Err(e) => {
                out.message(
                    Mask::Error,
                    &format!("!portleak: -json {path}: cannot write the file: {e}"),
                );
                failed = true;
            }
        }
    }
    let what = match &inv.view {
        View::Report if inv.json.is_some() && !inv.view_given => None,
        View::Report => {
            report::report(&a, out);
            Some("report")
        }
        View::Endpoints(f) => {
            report::endpoints(&a, &filter(f), out);
            Some("endpoint list")
        }
        View::Process(p) => {
            if !process(&a, *p, out) {
                failed = true;
            }
            Some("process view")
        }
        View::Help => {
            usage::write(out);
            None
        }
    };
    if inv.verbose {
        details(&a, out);
    }
    if a.partial {
        say_partial(out, what.unwrap_or("JSON analysis"));
        return Outcome::Partial;
    }
    if failed {
        Outcome::Failed
    } else {
        Outcome::Done
    }
}

fn filter(f: &EndpointFilter) -> Filter {
    Filter {
        pid: f.pid.map(u64::from),
        state: f.state,
        protocol: f.proto,
        process: None,
    }
}

/// The process view; an EPROCESS address is matched against the processes the walk found.
fn process<E: Emit>(a: &Analysis, p: ProcessRef, out: &mut Buffered<E>) -> bool {
    let pid = match p {
        ProcessRef::Pid(pid) => Some(u64::from(pid)),
        ProcessRef::Eprocess(va) => a.processes.iter().find(|q| q.eprocess == va).map(|q| q.pid),
    };
    if let Some(pid) = pid {
        if report::process(a, pid, out) {
            return true;
        }
    }
    let hint = if a.processes.is_empty() {
        "no process list could be walked (see the warnings of !portleak -report -v)".to_string()
    } else {
        format!(
            "it is not among the {} processes found; !portleak -report lists the owners",
            a.processes.len()
        )
    };
    out.message(Mask::Error, &format!("!portleak: no {p}: {hint}"));
    false
}

/// `-v`: where the facts came from and every warning with all its examples.
fn details(a: &Analysis, out: &mut dyn Markup) {
    out.text("\n");
    out.bold("DETAILS (-v)");
    out.text("\n");
    out.text(&format!("  Target        {}\n", a.system.target));
    for m in [&a.system.kernel, &a.system.tcpip, &a.system.afd]
        .into_iter()
        .flatten()
    {
        out.text(&format!(
            "  {:<13} base {:#x} size {:#x} timestamp {:#010x} version {}\n",
            m.name,
            m.base,
            m.size,
            m.timestamp,
            m.file_version.as_deref().unwrap_or("unknown")
        ));
    }
    out.text(&format!(
        "  tcpip layout  {}\n",
        a.system
            .tcpip_layout
            .as_deref()
            .unwrap_or("none (tcpip was not walked)")
    ));
    out.text(&format!(
        "  Processes     {} found, {} endpoints\n",
        a.processes.len(),
        a.endpoints.len()
    ));
    if a.warnings.is_empty() {
        out.text("  No warnings.\n");
    }
    for w in &a.warnings {
        out.text(&format!("  warning {} x{}\n", w.kind, w.count));
        for e in &w.examples {
            out.text(&format!("    - {e}\n"));
        }
        if w.count > w.examples.len() as u64 {
            out.text(&format!(
                "    ({} more not kept)\n",
                w.count - w.examples.len() as u64
            ));
        }
    }
}

#[cfg(test)]
#[path = "views_tests.rs"]
mod tests;
