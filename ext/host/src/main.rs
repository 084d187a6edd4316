//! A fake DbgEng engine that loads portleak.dll, runs its commands and checks what they print.
//!
//! Runs under Wine on Linux (`ext/tools/test.sh`), or natively on Windows:
//!
//! ```text
//! portleak-ext-host.exe [path\to\portleak.dll] [--scenarios <dir>] [--verbose]
//! ```
//! Without a path it loads the portleak.dll beside the exe. Prints `ok   name` / `FAIL name: why`
//! per check and ends with `N passed, N failed`; the exit code is 1 if any check failed.

#[cfg(windows)]
mod checks;
#[cfg(windows)]
mod checks_engine;
#[cfg(windows)]
mod dll;
#[cfg(windows)]
mod engine;
#[cfg(windows)]
mod fixture;
#[cfg(windows)]
mod printf;
#[cfg(windows)]
mod stubs;

#[cfg(windows)]
fn main() {
    std::process::exit(checks::main());
}

#[cfg(not(windows))]
fn main() {
    eprintln!("portleak-ext-host is a Windows program: build it with --target x86_64-pc-windows-gnu and run ext/tools/test.sh");
    std::process::exit(2);
}
