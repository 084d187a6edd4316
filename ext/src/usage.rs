//! The help text of `!portleak -h` and `!help`. In DML the examples are links that run them.

use portleak::render::Markup;

const SYNOPSIS: &str = "\
Usage: !portleak [-report] [-range <start-end>] [-delay <s>] [-json <file>] [-v]
       !portleak -endpoints [-pid <pid>] [-state <state>] [-proto tcp|udp] [-json <file>] [-v]
       !portleak -process <pid | EPROCESS address> [-v]
       !portleak -h | -?

  -report          Port exhaustion summary: use of the dynamic port range (49152-65535 by
                   default), the processes holding the most ports, TIME_WAIT totals and expiry
                   against the target's clock (flags the 497-day bug, KB2553549). The default.
  -endpoints       One line per TCP/UDP endpoint (tcpip.sys and afd.sys), with owner and state.
    -pid <pid>       only endpoints owned by this process
    -state <state>   only TCP endpoints in this state (netstat names, any case): LISTENING
                     SYN_SENT SYN_RECEIVED ESTABLISHED FIN_WAIT_1 FIN_WAIT_2 CLOSE_WAIT CLOSING
                     LAST_ACK TIME_WAIT DELETE_TCB BOUND CLOSED
    -proto tcp|udp   only this protocol
  -process <p>     Everything one process holds; <p> is a process id or an EPROCESS address.
  -range <s-e>     The machine's dynamic port range when not the default, e.g. 10000-65535
                   (netsh int ipv4 show dynamicport tcp shows it on the live machine).
  -delay <s>       The machine's TcpTimedWaitDelay in seconds when not the default (240).
  -json <file>     Also write the whole analysis as JSON to <file> (a path on the machine running
                   the debugger). Without a view option only the file is written.
  -v               Verbose: where each fact came from (symbols or built-in layouts) and every
                   warning in full.
  -h, -?           This text.

Numbers: a bare number is a decimal process id; write 0x... for hex. Addresses are hex and may
use the debugger's backtick (ffffa08f`1c2d3080). Ctrl+Break stops a long walk; what was found so
far is printed and marked as partial.

Examples:
";

const EXAMPLES: [(&str, &str); 6] = [
    ("!portleak", "the summary report"),
    (
        "!portleak -endpoints -state TIME_WAIT",
        "every connection in TIME_WAIT",
    ),
    ("!portleak -endpoints -proto udp", "every UDP endpoint"),
    ("!portleak -process 4", "what the System process holds"),
    (
        "!portleak -report -v",
        "the report with data sources and all warnings",
    ),
    (
        "!portleak -json c:\\temp\\ports.json",
        "write the analysis for scripts",
    ),
];

/// Writes the usage text.
pub fn write(out: &mut dyn Markup) {
    out.bold("!portleak - who holds the TCP/UDP ports of this machine\n\n");
    out.text(SYNOPSIS);
    for (cmd, what) in EXAMPLES {
        out.text("  ");
        // JSON to a made-up path is not something to run by a click.
        if cmd.contains("-json") {
            out.text(cmd);
        } else {
            out.link(cmd, cmd);
        }
        out.text(&format!(
            "{}{what}\n",
            " ".repeat(42usize.saturating_sub(cmd.len()))
        ));
    }
}

/// The line that follows an argument error.
pub const HINT: &str = "Type !portleak -h for usage.";

#[cfg(test)]
mod tests {
    use super::*;
    use portleak::render::PlainText;

    #[test]
    fn usage_mentions_every_option() {
        let mut t = PlainText::default();
        write(&mut t);
        for opt in [
            "-report",
            "-endpoints",
            "-pid",
            "-state",
            "-proto",
            "-process",
            "-json",
            "-range",
            "-delay",
            "-v",
            "-h",
            "-?",
        ] {
            assert!(t.0.contains(opt), "usage lacks {opt}");
        }
        assert!(
            t.0.lines().all(|l| l.len() <= 100),
            "usage lines fit a debugger window"
        );
        for (cmd, _) in EXAMPLES {
            if cmd != "!portleak" {
                let args = cmd.trim_start_matches("!portleak ");
                assert!(crate::args::parse(args).is_ok(), "example {cmd} must parse");
            }
        }
    }
}
