//! The DbgEng output device (Windows only): chunks from [`Buffered`] go to
//! `IDebugControl4::ControlledOutputWide`.

use crate::markup::{escape_printf, Buffered, Emit, Mask};
use windows::Win32::System::Diagnostics::Debug::Extensions::{
    IDebugControl4, DEBUG_ENGOPT_PREFER_DML, DEBUG_OUTCTL_AMBIENT_DML, DEBUG_OUTCTL_AMBIENT_TEXT,
    DEBUG_OUTPUT_ERROR, DEBUG_OUTPUT_NORMAL, DEBUG_OUTPUT_VERBOSE, DEBUG_OUTPUT_WARNING,
};
use windows_core::PCWSTR;

/// Writes to the debugger's output. The wide API is used because process names and paths are
/// UTF-16 in the kernel; the narrow one would pass them through the ANSI code page.
pub struct DbgEmit {
    ctl: IDebugControl4,
}

/// The extension's output: DML when the user prefers it (`.prefer_dml 1`, the default in WinDbg),
/// plain text otherwise.
pub type Out = Buffered<DbgEmit>;

pub fn open(ctl: IDebugControl4) -> Out {
    // SAFETY: plain value call on a live interface.
    let options = unsafe { ctl.GetEngineOptions() }.unwrap_or(0);
    let dml = options & DEBUG_ENGOPT_PREFER_DML != 0;
    Buffered::new(DbgEmit { ctl }, dml)
}

impl Emit for DbgEmit {
    fn emit(&mut self, mask: Mask, dml: bool, chunk: &str) {
        let mask = match mask {
            Mask::Normal => DEBUG_OUTPUT_NORMAL,
            Mask::Error => DEBUG_OUTPUT_ERROR,
            Mask::Warning => DEBUG_OUTPUT_WARNING,
            Mask::Verbose => DEBUG_OUTPUT_VERBOSE,
        };
        // Every text handed to Output* is a printf format: `%` in data must be doubled.
        let wide: Vec<u16> = escape_printf(chunk).encode_utf16().chain(Some(0)).collect();
        let control = if dml {
            DEBUG_OUTCTL_AMBIENT_DML
        } else {
            DEBUG_OUTCTL_AMBIENT_TEXT
        };
        // A failed Output cannot be reported anywhere; the command goes on.
        // SAFETY: wide is NUL-terminated and outlives the call.
        let _ = unsafe {
            self.ctl
                .ControlledOutputWide(control, mask, PCWSTR(wide.as_ptr()))
        };
    }
}
