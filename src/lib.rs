//! portleak: who holds the TCP/UDP ports of a Windows machine, from a kernel crash dump or
//! from inside the debugger.
//!
//! One analysis engine, two front doors: the CLI (`src/main.rs`, over [`offline`]) and the
//! DbgEng extension in `ext/`. The engine reads the target only through [`target::Target`].

pub mod afd;
pub mod analysis;
pub mod diag;
pub mod kernel;
pub mod model;
pub mod offline;
pub mod render;
pub mod report;
pub mod target;
pub mod tcpip;
pub mod testing;
pub mod time;
pub mod walk;

pub use target::{ModuleInfo, Target, TargetClock, TargetError, TargetExt};
