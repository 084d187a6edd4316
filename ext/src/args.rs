//! The `!portleak` command line: tokens, options, and what they ask for.
//!
//! Pure Rust (no Windows types) so it is unit-tested on the Linux host. Errors name the argument
//! that is wrong, as `!process`/`!poolused` do, and the caller follows them with the usage hint.
//!
//! Numbers: a bare number is a *decimal* process id (the report, netstat and Task Manager print
//! pids in decimal, and the report's drill-down links must round-trip). `0x` marks hex and `0n`
//! decimal, as in the debugger's expression syntax; addresses may carry the debugger's backtick
//! separator (`ffffa08f`1c2d3080`).

use portleak::analysis::capacity::PortRange;
use portleak::analysis::Options;
use portleak::model::{Protocol, TcpState, ALL_STATES};
use std::fmt;

/// Which view a command asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum View {
    /// The summary report (the default when no view is named).
    Report,
    /// One line per endpoint, optionally filtered.
    Endpoints(EndpointFilter),
    /// Everything one process holds.
    Process(ProcessRef),
    /// Usage text.
    Help,
}

/// Filters of `-endpoints`; all that are set must match. States are the engine's netstat names
/// ([`TcpState::parse`]: any case, `_`/`-` optional, `LISTEN` for `LISTENING`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointFilter {
    pub pid: Option<u32>,
    pub state: Option<TcpState>,
    pub proto: Option<Protocol>,
}

/// A process named by id or by the address of its EPROCESS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessRef {
    Pid(u32),
    Eprocess(u64),
}

/// A parsed `!portleak` command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub view: View,
    /// `-json <file>`: also write the analysis as JSON to this file.
    pub json: Option<String>,
    /// `-v`: also print where the data came from and every warning in full.
    pub verbose: bool,
    /// True when the user named a view; with `-json` alone only the file is written.
    pub view_given: bool,
    /// `-range <start-end>`: the machine's dynamic port range, as `--dynamic-range` in the CLI.
    pub dynamic_range: Option<PortRange>,
    /// `-delay <seconds>`: the machine's TcpTimedWaitDelay, as `--time-wait-delay` in the CLI.
    pub time_wait_delay: Option<u32>,
}

impl Invocation {
    /// The engine's options this command line asks for.
    pub fn options(&self) -> Options {
        Options {
            dynamic_range: self.dynamic_range,
            time_wait_delay: self.time_wait_delay,
            ..Options::default()
        }
    }
}

/// What is wrong with a command line, naming the argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArgError {
    #[error("unknown option '{0}'")]
    Unknown(String),
    #[error("'{0}' needs a value")]
    MissingValue(&'static str),
    #[error("{option} {value}: {why}")]
    BadValue {
        option: &'static str,
        value: String,
        why: String,
    },
    #[error("'{0}' and '{1}' cannot be used together")]
    Conflict(&'static str, &'static str),
    #[error("'{0}' only filters -endpoints; add -endpoints")]
    FilterWithoutEndpoints(&'static str),
    #[error("'{0}' is given twice")]
    Repeated(&'static str),
    #[error("unexpected argument '{0}' (options start with '-')")]
    Stray(String),
    #[error("unterminated quote in the command line")]
    Quote,
}

/// Splits a command line the way the debugger hands it over: whitespace separates, double quotes
/// group (`-json "C:\My Dumps\p.json"`); backslashes are literal because Windows paths end in them.
pub fn tokenize(line: &str) -> Result<Vec<String>, ArgError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_token = false;
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_token = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_token {
                    out.push(std::mem::take(&mut cur));
                    in_token = false;
                }
            }
            c => {
                cur.push(c);
                in_token = true;
            }
        }
    }
    if quoted {
        return Err(ArgError::Quote);
    }
    if in_token {
        out.push(cur);
    }
    Ok(out)
}

/// Parses the arguments of `!portleak`. No arguments means `-report`.
pub fn parse(line: &str) -> Result<Invocation, ArgError> {
    let tokens = tokenize(line)?;
    let mut view: Option<(&'static str, View)> = None;
    let mut filter = EndpointFilter::default();
    let mut filter_flag: Option<&'static str> = None;
    let mut json = None;
    let mut verbose = false;
    let mut dynamic_range = None;
    let mut time_wait_delay = None;
    let mut it = tokens.into_iter();

    let set_view = |name: &'static str, v: View, view: &mut Option<(&'static str, View)>| match view
    {
        Some((prev, _)) if *prev == name => Err(ArgError::Repeated(name)),
        Some((prev, _)) => Err(ArgError::Conflict(prev, name)),
        None => {
            *view = Some((name, v));
            Ok(())
        }
    };

    while let Some(tok) = it.next() {
        // `/` works as well as `-`, as in the built-in extensions.
        let opt = match tok.strip_prefix('-').or_else(|| tok.strip_prefix('/')) {
            Some(o) if !o.is_empty() => o.to_ascii_lowercase(),
            _ => return Err(ArgError::Stray(tok)),
        };
        match opt.as_str() {
            "report" => set_view("-report", View::Report, &mut view)?,
            "endpoints" => set_view(
                "-endpoints",
                View::Endpoints(EndpointFilter::default()),
                &mut view,
            )?,
            "h" | "?" | "help" => set_view("-h", View::Help, &mut view)?,
            "process" => {
                let v = it.next().ok_or(ArgError::MissingValue("-process"))?;
                let p = parse_process(&v).map_err(|why| ArgError::BadValue {
                    option: "-process",
                    value: v,
                    why,
                })?;
                set_view("-process", View::Process(p), &mut view)?;
            }
            "pid" => {
                let v = it.next().ok_or(ArgError::MissingValue("-pid"))?;
                if filter.pid.is_some() {
                    return Err(ArgError::Repeated("-pid"));
                }
                filter.pid = Some(parse_pid(&v).map_err(|why| ArgError::BadValue {
                    option: "-pid",
                    value: v,
                    why,
                })?);
                filter_flag.get_or_insert("-pid");
            }
            "state" => {
                let v = it.next().ok_or(ArgError::MissingValue("-state"))?;
                if filter.state.is_some() {
                    return Err(ArgError::Repeated("-state"));
                }
                let st = TcpState::parse(&v).ok_or_else(|| ArgError::BadValue {
                    option: "-state",
                    why: format!(
                        "not a TCP state; use one of {}",
                        ALL_STATES
                            .iter()
                            .map(|s| s.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    value: v,
                })?;
                filter.state = Some(st);
                filter_flag.get_or_insert("-state");
            }
            "proto" => {
                let v = it.next().ok_or(ArgError::MissingValue("-proto"))?;
                if filter.proto.is_some() {
                    return Err(ArgError::Repeated("-proto"));
                }
                filter.proto = Some(match v.to_ascii_lowercase().as_str() {
                    "tcp" => Protocol::Tcp,
                    "udp" => Protocol::Udp,
                    _ => {
                        return Err(ArgError::BadValue {
                            option: "-proto",
                            value: v,
                            why: "use tcp or udp".into(),
                        })
                    }
                });
                filter_flag.get_or_insert("-proto");
            }
            "json" => {
                let v = it.next().ok_or(ArgError::MissingValue("-json"))?;
                if json.is_some() {
                    return Err(ArgError::Repeated("-json"));
                }
                if v.starts_with('-') {
                    return Err(ArgError::MissingValue("-json"));
                }
                json = Some(v);
            }
            "range" => {
                let v = it.next().ok_or(ArgError::MissingValue("-range"))?;
                if dynamic_range.is_some() {
                    return Err(ArgError::Repeated("-range"));
                }
                dynamic_range = Some(PortRange::parse(&v).map_err(|why| ArgError::BadValue {
                    option: "-range",
                    value: v,
                    why,
                })?);
            }
            "delay" => {
                let v = it.next().ok_or(ArgError::MissingValue("-delay"))?;
                if time_wait_delay.is_some() {
                    return Err(ArgError::Repeated("-delay"));
                }
                // TcpTimedWaitDelay is documented from 30 to 300 s (tcpip-afd-facts 3.1); other
                // values are accepted as given, since the registry does not enforce the range.
                time_wait_delay = Some(v.parse::<u32>().map_err(|_| ArgError::BadValue {
                    option: "-delay",
                    value: v,
                    why: "not a number of seconds (TcpTimedWaitDelay, e.g. 120)".into(),
                })?);
            }
            "v" | "verbose" => verbose = true,
            _ => return Err(ArgError::Unknown(tok)),
        }
    }

    let view_given = view.is_some();
    let view = match view {
        None => {
            if let Some(f) = filter_flag {
                return Err(ArgError::FilterWithoutEndpoints(f));
            }
            View::Report
        }
        Some((_, View::Endpoints(_))) => View::Endpoints(filter),
        Some((_, v)) => {
            if let Some(f) = filter_flag {
                return Err(ArgError::FilterWithoutEndpoints(f));
            }
            v
        }
    };
    if view == View::Help && json.is_some() {
        return Err(ArgError::Conflict("-h", "-json"));
    }
    Ok(Invocation {
        view,
        json,
        verbose,
        view_given,
        dynamic_range,
        time_wait_delay,
    })
}

/// A number in the debugger's notation: `0x`/`0n` prefixes, backtick separators.
/// Returns the value and whether it was written in hex.
fn parse_number(s: &str) -> Option<(u64, bool)> {
    let t: String = s.chars().filter(|c| *c != '`').collect();
    let lower = t.to_ascii_lowercase();
    if let Some(h) = lower.strip_prefix("0x") {
        return u64::from_str_radix(h, 16).ok().map(|v| (v, true));
    }
    if let Some(d) = lower.strip_prefix("0n") {
        return d.parse().ok().map(|v| (v, false));
    }
    if !lower.is_empty() && lower.bytes().all(|b| b.is_ascii_digit()) && !s.contains('`') {
        return lower.parse().ok().map(|v| (v, false));
    }
    u64::from_str_radix(&lower, 16).ok().map(|v| (v, true))
}

/// Lowest canonical kernel-mode address on x64 (dump-format-facts: the upper half starts at
/// 0xFFFF8000`00000000).
const KERNEL_BASE: u64 = 0xFFFF_8000_0000_0000;

fn parse_pid(s: &str) -> Result<u32, String> {
    match parse_number(s) {
        None => Err("not a number (a decimal process id, or 0x... for hex)".into()),
        Some((v, _)) if v > u64::from(u32::MAX) => Err("too large for a process id".into()),
        // Bare hex digits with letters (`1a2c`) are ambiguous to the user; ask for 0x.
        Some((_, true)) if !s.to_ascii_lowercase().starts_with("0x") => Err(
            "bare hex is ambiguous for a process id: write 0x... for hex or a decimal number"
                .into(),
        ),
        // Windows process ids are multiples of 4 (handle-table indices); ids that are not are still
        // accepted because the user may be looking for a corrupted entry.
        Some((v, _)) => Ok(v as u32),
    }
}

fn parse_process(s: &str) -> Result<ProcessRef, String> {
    let Some((v, hex)) = parse_number(s) else {
        return Err("not a process id or an EPROCESS address".into());
    };
    if v >= KERNEL_BASE {
        return Ok(ProcessRef::Eprocess(v));
    }
    if v > u64::from(u32::MAX) {
        return Err("neither a process id nor a kernel-mode address (EPROCESS is at 0xffff8000`00000000 or above)".into());
    }
    if hex && !s.to_ascii_lowercase().starts_with("0x") {
        return Err(
            "bare hex is ambiguous: write 0x... for a hex process id or a decimal number".into(),
        );
    }
    Ok(ProcessRef::Pid(v as u32))
}

impl fmt::Display for ProcessRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessRef::Pid(p) => write!(f, "process id {p}"),
            ProcessRef::Eprocess(a) => write!(f, "EPROCESS {a:#018x}"),
        }
    }
}

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
