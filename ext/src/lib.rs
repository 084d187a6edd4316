//! portleak as a DbgEng (WinDbg) extension DLL: `.load portleak`, then `!portleak -report`.
//!
//! Layers, from the debugger inwards:
//! - `exports` (Windows only): the DLL entry points DbgEng calls, each behind a panic guard;
//! - `dbgeng`, `output` (Windows only): [`portleak::Target`] over the debugger's
//!   IDebugDataSpaces/IDebugSymbols3/IDebugControl4, and the DbgEng output device;
//! - [`command`], [`views`]: what the commands do, over any `Target` and any [`markup::Emit`];
//! - [`args`], [`markup`], [`usage`]: the command line, the DML/text sink and the help text.
//!
//! Everything but the first two layers is plain Rust and unit-tested on the Linux host
//! (`cargo test -p portleak-ext --lib`); the FFI layers are tested under Wine by `ext/host`.

pub mod args;
pub mod command;
pub mod markup;
pub mod usage;
pub mod views;

#[cfg(windows)]
mod dbgeng;
#[cfg(windows)]
mod exports;
#[cfg(windows)]
mod output;
