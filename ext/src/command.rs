//! What `!portleak` and `!help` do, independent of DbgEng: parse, connect, analyse, render.
//!
//! The FFI layer (`exports`) hands in a way to make the target and the output sink; tests on
//! Linux hand in the engine's in-memory target and a recording sink.

use crate::args::{self, Invocation, View};
use crate::markup::{Buffered, Emit, Mask};
use crate::usage;
use portleak::Target;

/// Which export was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    Portleak,
    Help,
}

/// How a command ended; the FFI layer maps it to an HRESULT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for was printed (S_OK).
    Done,
    /// The user interrupted; what was found so far was printed and marked partial (S_OK).
    Partial,
    /// The command line was wrong; the error and the usage hint were printed (E_INVALIDARG).
    BadArgs,
    /// The analysis could not run; the reason was printed (E_FAIL).
    Failed,
}

/// Set (to anything) in the debugger's environment, this makes the command panic after it has
/// connected to the target, so the Wine test host can check that the panic guard holds and COM
/// references are released. Undocumented for users; documented in docs/EXTENSION.md for testers.
pub const TEST_PANIC_ENV: &str = "PORTLEAK_EXT_TEST_PANIC";

pub type Connect<'a> = dyn FnMut() -> Result<Box<dyn Target>, String> + 'a;

pub fn run<E: Emit>(
    cmd: Cmd,
    line: &str,
    connect: &mut Connect<'_>,
    out: &mut Buffered<E>,
) -> Outcome {
    if cmd == Cmd::Help {
        usage::write(out);
        return Outcome::Done;
    }
    let inv = match args::parse(line) {
        Ok(inv) => inv,
        Err(e) => {
            out.message(Mask::Error, &format!("!portleak: {e}\n{}", usage::HINT));
            return Outcome::BadArgs;
        }
    };
    if inv.view == View::Help {
        usage::write(out);
        return Outcome::Done;
    }
    let target = match connect() {
        Ok(t) => t,
        Err(why) => {
            out.message(Mask::Error, &format!("!portleak: {why}"));
            return Outcome::Failed;
        }
    };
    if std::env::var_os(TEST_PANIC_ENV).is_some() {
        panic!("{TEST_PANIC_ENV} is set: panicking on purpose to test the extension's panic guard");
    }
    crate::views::execute(&inv, &*target, out)
}

/// Shared by the views: prints the interruption notice that follows partial output.
pub fn say_partial<E: Emit>(out: &mut Buffered<E>, what: &str) {
    out.message(
        Mask::Warning,
        &format!("!portleak: interrupted (Ctrl+Break) - the {what} above is PARTIAL: it covers only what was walked before the interruption."),
    );
}

/// Used by `views` for `-v` lines that are not part of the report itself.
pub fn verbose<E: Emit>(inv: &Invocation, out: &mut Buffered<E>, text: &str) {
    if inv.verbose {
        out.message(Mask::Verbose, text);
    }
}
