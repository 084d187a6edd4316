//! Loading portleak.dll and calling its exports the way DbgEng does.

use crate::engine::{Engine, Record};
use std::ffi::{c_void, CString};
use windows::Win32::Foundation::{FreeLibrary, HMODULE};
use windows::Win32::System::Diagnostics::Debug::Extensions::IDebugClient;
use windows::Win32::System::LibraryLoader::{GetProcAddress, LoadLibraryW};
use windows_core::{ComObject, Interface, HRESULT, HSTRING, PCSTR};

/// The C types of the exports (PDEBUG_EXTENSION_* with raw pointers, so null can be passed).
pub type Initialize = unsafe extern "system" fn(*mut u32, *mut u32) -> HRESULT;
pub type Uninitialize = unsafe extern "system" fn();
pub type Notify = unsafe extern "system" fn(u32, u64);
pub type Call = unsafe extern "system" fn(*mut c_void, PCSTR) -> HRESULT;

pub struct Dll {
    module: HMODULE,
}

impl Dll {
    pub fn load(path: &str) -> Result<Self, String> {
        // SAFETY: loading a DLL runs its initialisers; portleak.dll has no DllMain of its own.
        let module = unsafe { LoadLibraryW(&HSTRING::from(path)) }
            .map_err(|e| format!("LoadLibraryW({path}): {e}"))?;
        Ok(Self { module })
    }

    /// The address of an export, if the DLL has it.
    pub fn export(&self, name: &str) -> Option<unsafe extern "system" fn() -> isize> {
        let n = CString::new(name).ok()?;
        // SAFETY: the module is loaded; the name is NUL-terminated.
        unsafe { GetProcAddress(self.module, PCSTR(n.as_ptr().cast())) }
    }

    pub fn call(&self, name: &str) -> Option<Call> {
        // SAFETY: the export is declared with the PDEBUG_EXTENSION_CALL type (the DLL pins it).
        self.export(name).map(|f| unsafe {
            std::mem::transmute::<unsafe extern "system" fn() -> isize, Call>(f)
        })
    }

    pub fn initialize(&self) -> Option<Initialize> {
        // SAFETY: as above, PDEBUG_EXTENSION_INITIALIZE.
        self.export("DebugExtensionInitialize").map(|f| unsafe {
            std::mem::transmute::<unsafe extern "system" fn() -> isize, Initialize>(f)
        })
    }

    pub fn uninitialize(&self) -> Option<Uninitialize> {
        // SAFETY: as above, PDEBUG_EXTENSION_UNINITIALIZE.
        self.export("DebugExtensionUninitialize").map(|f| unsafe {
            std::mem::transmute::<unsafe extern "system" fn() -> isize, Uninitialize>(f)
        })
    }

    pub fn notify(&self) -> Option<Notify> {
        // SAFETY: as above, PDEBUG_EXTENSION_NOTIFY.
        self.export("DebugExtensionNotify").map(|f| unsafe {
            std::mem::transmute::<unsafe extern "system" fn() -> isize, Notify>(f)
        })
    }
}

impl Drop for Dll {
    fn drop(&mut self) {
        // SAFETY: the module was loaded by us and no code from it runs after this.
        let _ = unsafe { FreeLibrary(self.module) };
    }
}

/// One fake debugger session: the engine object and the client pointer handed to commands.
pub struct Session {
    pub engine: ComObject<Engine>,
    pub client: IDebugClient,
}

/// What one command did.
pub struct Run {
    pub hr: HRESULT,
    pub records: Vec<Record>,
    /// COM references on the engine object before and after the call.
    pub refs: (u32, u32),
}

impl Session {
    pub fn new(engine: Engine) -> Self {
        let engine = ComObject::new(engine);
        let client = engine.to_interface::<IDebugClient>();
        Self { engine, client }
    }

    /// The engine object's reference count (AddRef returns the new count; Release undoes it).
    pub fn refs(&self) -> u32 {
        let raw = self.client.as_raw();
        let vt = self.client.vtable();
        // SAFETY: a live COM object; the pair leaves the count unchanged.
        unsafe {
            let n = (vt.base__.AddRef)(raw);
            (vt.base__.Release)(raw);
            n - 1
        }
    }

    /// Runs `!name args` as DbgEng would: the client pointer and the argument string.
    pub fn run(&self, f: Call, args: &str) -> Run {
        self.engine.reset();
        let before = self.refs();
        let a = CString::new(args).expect("test arguments have no NUL");
        // SAFETY: the export has the PDEBUG_EXTENSION_CALL type; both pointers are live.
        let hr = unsafe { f(self.client.as_raw(), PCSTR(a.as_ptr().cast())) };
        let after = self.refs();
        Run {
            hr,
            records: self.engine.records.borrow().clone(),
            refs: (before, after),
        }
    }
}
