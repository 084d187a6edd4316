//! `portleak report`, `endpoints`, `demo` and `triage`: thin front doors over the engine.

use anyhow::{bail, Context, Result};
use clap::Args;
use portleak::analysis::{self, capacity::PortRange, Analysis, Options};
use portleak::model::{Protocol, TcpState};
use portleak::offline::OfflineTarget;
use portleak::render::PlainText;
use portleak::report::{self, Filter};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use symbols::{SymbolCache, SymbolPath};

#[derive(Args, Debug, Clone)]
pub struct AnalyzeArgs {
    /// Symbol path (`_NT_SYMBOL_PATH` syntax: `srv*C:\symbols*https://...;D:\more`); local stores
    /// only. Defaults to `_NT_SYMBOL_PATH`.
    #[arg(long, value_name = "PATH")]
    pub symbols: Option<String>,
    /// The machine's dynamic port range when it is not the build default, e.g. 10000-65535.
    #[arg(long, value_name = "START-END", value_parser = PortRange::parse)]
    pub dynamic_range: Option<PortRange>,
    /// The machine's TcpTimedWaitDelay in seconds when it is not the default (240).
    #[arg(long, value_name = "SECONDS")]
    pub time_wait_delay: Option<u32>,
}

impl AnalyzeArgs {
    fn symbol_path(&self) -> SymbolPath {
        match &self.symbols {
            Some(s) => SymbolPath::parse(s),
            None => SymbolPath::from_env().unwrap_or_else(|| SymbolPath::parse("")),
        }
    }
    fn options(&self) -> Options {
        Options {
            dynamic_range: self.dynamic_range,
            time_wait_delay: self.time_wait_delay,
            ..Options::default()
        }
    }
}

/// What `report` and `endpoints` read, and how they print.
#[derive(Args, Debug)]
pub struct DumpArgs {
    /// The kernel crash dump (MEMORY.DMP).
    pub dump: PathBuf,
    #[command(flatten)]
    pub analyze: AnalyzeArgs,
    /// Print JSON (schema: docs/JSON.md) instead of text.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print every endpoint as a CSV row instead of text.
    #[arg(long)]
    pub csv: bool,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub input: DumpArgs,
}

#[derive(Args, Debug)]
pub struct EndpointsArgs {
    #[command(flatten)]
    pub input: DumpArgs,
    /// Only endpoints of this process id.
    #[arg(long)]
    pub pid: Option<u64>,
    /// Only endpoints in this TCP state (TIME_WAIT, ESTABLISHED, BOUND, LISTENING, ...).
    #[arg(long, value_parser = parse_state)]
    pub state: Option<TcpState>,
    /// Only endpoints of processes with this image name (java.exe or java).
    #[arg(long)]
    pub process: Option<String>,
    /// Only tcp or udp.
    #[arg(long, value_parser = parse_proto)]
    pub proto: Option<Protocol>,
}

fn parse_state(s: &str) -> Result<TcpState, String> {
    TcpState::parse(s).ok_or_else(|| {
        format!(
            "'{s}' is not a TCP state (e.g. TIME_WAIT, ESTABLISHED, CLOSE_WAIT, BOUND, LISTENING)"
        )
    })
}

fn parse_proto(s: &str) -> Result<Protocol, String> {
    match s.to_ascii_lowercase().as_str() {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        _ => Err(format!("'{s}' is not tcp or udp")),
    }
}

/// Opens a dump and runs the analysis; symbol problems go to stderr.
fn analyze_dump(
    path: &Path,
    args: &AnalyzeArgs,
    cache: Arc<SymbolCache>,
    quiet: bool,
) -> Result<Analysis> {
    let dump =
        dumps::Dump::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let target = OfflineTarget::new(&dump, args.symbol_path(), cache);
    let a = analysis::analyze(&target, &args.options());
    if !quiet {
        for w in dump.warnings() {
            eprintln!("warning: {w}");
        }
        for p in target.problems() {
            eprintln!("warning: {p}");
        }
    }
    Ok(a)
}

pub fn report(args: &ReportArgs) -> Result<()> {
    let args = &args.input;
    let a = analyze_dump(
        &args.dump,
        &args.analyze,
        Arc::new(SymbolCache::new()),
        false,
    )?;
    if args.json {
        println!("{}", report::json(&a));
    } else if args.csv {
        print!("{}", report::csv(&a));
    } else {
        let mut out = PlainText::default();
        report::report(&a, &mut out);
        print!("{}", out.0);
    }
    Ok(())
}

pub fn endpoints(args: &EndpointsArgs) -> Result<()> {
    let input = &args.input;
    let mut a = analyze_dump(
        &input.dump,
        &input.analyze,
        Arc::new(SymbolCache::new()),
        false,
    )?;
    let filter = Filter {
        pid: args.pid,
        state: args.state,
        protocol: args.proto,
        process: args.process.clone(),
    };
    if input.json || input.csv {
        a.endpoints.retain(|e| filter.matches(e));
        if input.json {
            println!("{}", serde_json::to_string_pretty(&a.endpoints)?);
        } else {
            print!("{}", report::csv(&a));
        }
        return Ok(());
    }
    let mut out = PlainText::default();
    report::endpoints(&a, &filter, &mut out);
    print!("{}", out.0);
    Ok(())
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where to write the demo dump and its symbols (default: a new temporary directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn demo(args: &DemoArgs) -> Result<()> {
    let dir = match &args.out {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("portleak-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    eprintln!("Building the demo dump (Server 2008 R2 SP1, 500 days up, java.exe with 15,000 TIME_WAIT) in {} ...", dir.display());
    let built = synth::demo::build(&dir).context("cannot build the demo dump")?;
    let sym = format!("srv*{}", built.symbols_dir.display());
    let analyze = AnalyzeArgs {
        symbols: Some(sym.clone()),
        dynamic_range: None,
        time_wait_delay: None,
    };
    let a = analyze_dump(&built.dump, &analyze, Arc::new(SymbolCache::new()), false)?;
    let mut out = PlainText::default();
    report::report(&a, &mut out);
    print!("{}", out.0);
    eprintln!(
        "\nDemo files:\n  dump     {}\n  symbols  {}\n  truth    {}",
        built.dump.display(),
        built.symbols_dir.display(),
        built.truth.display()
    );
    let exe = std::env::current_exe().map_or("portleak".into(), |p| p.display().to_string());
    let dump = built.dump.display();
    eprintln!("Try:\n  {exe} report {dump} --symbols '{sym}'");
    eprintln!("  {exe} endpoints {dump} --symbols '{sym}' --state TIME_WAIT --process java");
    eprintln!("  {exe} info {dump}");
    Ok(())
}

#[derive(Args, Debug)]
pub struct TriageArgs {
    /// Dumps, or directories searched (recursively) for *.dmp files.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub analyze: AnalyzeArgs,
    /// One JSON object per dump (JSON Lines) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Parallel dumps (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
}

fn collect_dumps(inputs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = inputs.to_vec();
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.filter_map(|e| e.ok().map(|e| e.path())));
            }
        } else if inputs.contains(&p)
            || p.extension().is_some_and(|e| e.eq_ignore_ascii_case("dmp"))
        {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// One line of a triage run.
#[derive(serde::Serialize)]
struct TriageRow {
    dump: String,
    ok: bool,
    error: Option<String>,
    verdict: Option<String>,
    tcp_used_percent: Option<f64>,
    top_holder: Option<String>,
    findings: Vec<String>,
}

pub fn triage(args: &TriageArgs) -> Result<()> {
    let dumps = collect_dumps(&args.inputs);
    if dumps.is_empty() {
        bail!("no dumps found in {:?}", args.inputs);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .build()?;
    let cache = Arc::new(SymbolCache::new());
    let bar = indicatif::ProgressBar::new(dumps.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} dumps {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let rows: Vec<TriageRow> = pool.install(|| {
        dumps
            .par_iter()
            .map(|d| {
                let r = analyze_dump(d, &args.analyze, cache.clone(), true);
                bar.inc(1);
                match r {
                    Ok(a) => TriageRow {
                        dump: d.display().to_string(),
                        ok: true,
                        error: None,
                        verdict: Some(a.verdict.level.name().to_string()),
                        tcp_used_percent: a
                            .capacity
                            .first()
                            .map(|c| (c.percent_used * 10.0).round() / 10.0),
                        top_holder: a
                            .owners
                            .first()
                            .map(|o| format!("{} ({})", o.owner.image(), o.dynamic_ports)),
                        findings: a.findings.iter().map(|f| f.id.to_string()).collect(),
                    },
                    Err(e) => TriageRow {
                        dump: d.display().to_string(),
                        ok: false,
                        error: Some(format!("{e:#}")),
                        verdict: None,
                        tcp_used_percent: None,
                        top_holder: None,
                        findings: vec![],
                    },
                }
            })
            .collect()
    });
    bar.finish_and_clear();
    for r in &rows {
        if args.json {
            println!("{}", serde_json::to_string(r)?);
        } else if let Some(e) = &r.error {
            println!("{}\tERROR\t{e}", r.dump);
        } else {
            println!(
                "{}\t{}\tTCP {:.1}%\t{}\t{}",
                r.dump,
                r.verdict.as_deref().unwrap_or("-"),
                r.tcp_used_percent.unwrap_or(0.0),
                r.top_holder.as_deref().unwrap_or("-"),
                r.findings.join(",")
            );
        }
    }
    let stats = cache.stats();
    eprintln!(
        "{} dumps; PDBs parsed {} times, reused {} times",
        rows.len(),
        stats.loads,
        stats.hits
    );
    Ok(())
}
