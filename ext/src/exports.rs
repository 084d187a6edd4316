//! The DLL's entry points (Windows only). Nothing unwinds into the debugger: every export runs its
//! body under `catch_unwind`, and a panic becomes E_FAIL plus a message on DEBUG_OUTPUT_ERROR.

use crate::command::{self, Cmd, Outcome};
use crate::dbgeng::DbgEngTarget;
use crate::markup::Mask;
use crate::output;
use portleak::Target;
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;
use windows::Win32::Foundation::{E_FAIL, E_INVALIDARG, E_POINTER, S_OK};
use windows::Win32::System::Diagnostics::Debug::Extensions::{
    IDebugClient, IDebugControl4, PDEBUG_EXTENSION_CALL, PDEBUG_EXTENSION_INITIALIZE,
    PDEBUG_EXTENSION_NOTIFY, PDEBUG_EXTENSION_UNINITIALIZE,
};
use windows_core::{Interface, Ref, HRESULT, PCSTR};

/// DEBUG_EXTENSION_VERSION(1, 0) from dbgeng.h: `(major << 16) | minor`.
const EXTENSION_VERSION: u32 = 1 << 16;

// Compile-time pins: each export has exactly the type the engine calls it through.
const _: PDEBUG_EXTENSION_INITIALIZE = Some(DebugExtensionInitialize);
const _: PDEBUG_EXTENSION_UNINITIALIZE = Some(DebugExtensionUninitialize);
const _: PDEBUG_EXTENSION_NOTIFY = Some(DebugExtensionNotify);
const _: PDEBUG_EXTENSION_CALL = Some(portleak);
const _: PDEBUG_EXTENSION_CALL = Some(help);

thread_local! {
    /// The message and location of the last panic on this thread, captured by the hook below.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Replaces the default hook (which writes to stderr, invisible or noise in a debugger) with one
/// that remembers the message for the command to print. The hook belongs to this DLL's copy of
/// std only, so the debugger and other extensions are unaffected.
fn install_panic_hook() {
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{msg}{at}")));
        }));
    });
}

/// # Safety
/// Called by DbgEng with writable `version` and `flags`.
#[no_mangle]
pub unsafe extern "system" fn DebugExtensionInitialize(
    version: *mut u32,
    flags: *mut u32,
) -> HRESULT {
    catch_unwind(|| {
        install_panic_hook();
        if version.is_null() || flags.is_null() {
            return E_POINTER;
        }
        // SAFETY: both pointers were checked for null; the engine owns the storage.
        unsafe {
            *version = EXTENSION_VERSION;
            *flags = 0;
        }
        S_OK
    })
    .unwrap_or(E_FAIL)
}

/// # Safety
/// Called by DbgEng once before unloading the DLL.
#[no_mangle]
pub unsafe extern "system" fn DebugExtensionUninitialize() {
    let _ = catch_unwind(|| {
        // Nothing is cached across commands; there is nothing to release.
    });
}

/// # Safety
/// Called by DbgEng on session changes.
#[no_mangle]
pub unsafe extern "system" fn DebugExtensionNotify(notify: u32, argument: u64) {
    // Per-command state only (see dbgeng.rs), so session changes need no action.
    let _ = catch_unwind(|| (notify, argument));
}

/// `!portleak [options]`.
///
/// # Safety
/// Called by DbgEng with a client (or null) and a NUL-terminated argument string (or null).
#[no_mangle]
pub unsafe extern "system" fn portleak(client: Ref<'_, IDebugClient>, args: PCSTR) -> HRESULT {
    // SAFETY: forwarded from the engine's call.
    unsafe { guard(Cmd::Portleak, client, args) }
}

/// `!help`: the usage of `!portleak`, as `!portleak -h`.
///
/// # Safety
/// As for [`portleak`].
#[no_mangle]
pub unsafe extern "system" fn help(client: Ref<'_, IDebugClient>, args: PCSTR) -> HRESULT {
    // SAFETY: forwarded from the engine's call.
    unsafe { guard(Cmd::Help, client, args) }
}

/// Runs a command behind the panic guard and turns its outcome into an HRESULT.
unsafe fn guard(cmd: Cmd, client: Ref<'_, IDebugClient>, args: PCSTR) -> HRESULT {
    install_panic_hook();
    let Some(client) = client.as_ref() else {
        return E_POINTER;
    };
    let line = if args.is_null() {
        String::new()
    } else {
        // SAFETY: the engine passes a NUL-terminated string.
        String::from_utf8_lossy(unsafe { args.as_bytes() }).into_owned()
    };
    let ctl: IDebugControl4 = match client.cast() {
        Ok(c) => c,
        // Without IDebugControl4 nothing can be printed; the HRESULT is all the engine gets.
        Err(e) => return e.code(),
    };
    let run = catch_unwind(AssertUnwindSafe(|| {
        let mut out = output::open(ctl.clone());
        let mut connect = || DbgEngTarget::new(client).map(|t| Box::new(t) as Box<dyn Target>);
        let outcome = command::run(cmd, &line, &mut connect, &mut out);
        out.finish();
        outcome
    }));
    match run {
        Ok(Outcome::Done | Outcome::Partial) => S_OK,
        Ok(Outcome::BadArgs) => E_INVALIDARG,
        Ok(Outcome::Failed) => E_FAIL,
        Err(_) => {
            let msg = LAST_PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_else(|| "(no message)".into());
            // A fresh sink: the one in the closure was dropped during unwinding.
            let mut out = output::open(ctl);
            out.message(
                Mask::Error,
                &format!(
                    "portleak: internal error: {msg}\nThe command was stopped; the debugger session is unaffected. \
                     Please report this with the command line and the output of `vertarget`."
                ),
            );
            out.finish();
            E_FAIL
        }
    }
}
