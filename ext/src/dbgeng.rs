//! [`Target`] over the debugger that loaded the DLL (Windows only).
//!
//! One `DbgEngTarget` lives for one command: type and field lookups are cached for that command
//! only, because between commands the user may `.reload` symbols or switch targets.

use portleak::{ModuleInfo, Target, TargetClock, TargetError};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::CString;
use windows::Win32::System::Diagnostics::Debug::Extensions::{
    IDebugClient, IDebugControl4, IDebugDataSpaces, IDebugSymbols3, DEBUG_MODULE_PARAMETERS,
};
use windows_core::{Interface, HRESULT, PCSTR};

/// Modules whose file version the engine uses. Version queries are made for these only: in a live
/// or remote session the debugger may have to fetch the image from the symbol server to answer.
const VERSIONED: [&str; 5] = ["nt", "tcpip", "afd", "netio", "http"];

/// Reads are issued in pieces of at most this size so one huge request cannot stall the debugger
/// (and so the u32 length of ReadVirtual never overflows).
const MAX_READ: usize = 1 << 20;

/// `module!type` -> (module base, type id), or why the type is unknown.
type TypeCache = HashMap<(String, String), Result<(u64, u32), TargetError>>;
/// (module, type, dotted field) -> offset, or why it is unknown.
type FieldCache = HashMap<(String, String, String), Result<u64, TargetError>>;

pub struct DbgEngTarget {
    data: IDebugDataSpaces,
    syms: IDebugSymbols3,
    ctl: IDebugControl4,
    types: RefCell<TypeCache>,
    fields: RefCell<FieldCache>,
    modules: RefCell<Option<Vec<ModuleInfo>>>,
    /// ReadVirtual calls made, for `-v`.
    pub reads: Cell<u64>,
}

/// Why the debugger lacks an interface the extension needs.
pub fn missing(iface: &str, e: &windows_core::Error) -> String {
    format!(
        "the debugger does not provide {iface} ({}); portleak needs a current WinDbg, kd or cdb",
        hr(e.code())
    )
}

pub fn hr(code: HRESULT) -> String {
    format!("HRESULT {:#010x}", code.0 as u32)
}

impl DbgEngTarget {
    pub fn new(client: &IDebugClient) -> Result<Self, String> {
        Ok(Self {
            data: client.cast().map_err(|e| missing("IDebugDataSpaces", &e))?,
            syms: client.cast().map_err(|e| missing("IDebugSymbols3", &e))?,
            ctl: client.cast().map_err(|e| missing("IDebugControl4", &e))?,
            types: RefCell::default(),
            fields: RefCell::default(),
            modules: RefCell::default(),
            reads: Cell::new(0),
        })
    }

    /// One ReadVirtual call; Ok(0) and errors both mean "nothing here".
    fn read_once(&self, va: u64, buf: &mut [u8]) -> Result<usize, HRESULT> {
        let mut got = 0u32;
        self.reads.set(self.reads.get() + 1);
        // SAFETY: buf is valid for buf.len() (<= MAX_READ) bytes and outlives the call.
        let r = unsafe {
            self.data.ReadVirtual(
                va,
                buf.as_mut_ptr().cast(),
                buf.len() as u32,
                Some(&mut got),
            )
        };
        match r {
            // A misbehaving engine could claim more than it was asked for; never trust that.
            Ok(()) => Ok((got as usize).min(buf.len())),
            Err(e) => Err(e.code()),
        }
    }

    fn type_id(&self, module: &str, ty: &str) -> Result<(u64, u32), TargetError> {
        let key = (module.to_string(), ty.to_string());
        if let Some(r) = self.types.borrow().get(&key) {
            return r.clone();
        }
        let r = self.lookup_type(module, ty);
        self.types.borrow_mut().insert(key, r.clone());
        r
    }

    fn lookup_type(&self, module: &str, ty: &str) -> Result<(u64, u32), TargetError> {
        let no_type = |reason: String| TargetError::NoType {
            module: module.into(),
            ty: ty.into(),
            field: None,
            reason,
        };
        let name = cstring(&format!("{module}!{ty}")).map_err(no_type)?;
        let mut id = 0u32;
        let mut base = 0u64;
        // SAFETY: name is NUL-terminated; out pointers are valid locals.
        unsafe {
            self.syms
                .GetSymbolTypeId(PCSTR(name.as_ptr().cast()), &mut id, Some(&mut base))
        }
        .map_err(|e| {
            no_type(format!(
                "GetSymbolTypeId failed ({}); are the symbols loaded (.reload)?",
                hr(e.code())
            ))
        })?;
        Ok((base, id))
    }

    fn module_names(&self, index: u32) -> (String, String) {
        let mut image = [0u8; 512];
        let mut module = [0u8; 256];
        // SAFETY: the buffers are valid for their lengths; sizes are optional.
        let r = unsafe {
            self.syms.GetModuleNames(
                index,
                0,
                Some(&mut image),
                None,
                Some(&mut module),
                None,
                None,
                None,
            )
        };
        if r.is_err() {
            return (String::new(), String::new());
        }
        (c_str(&image), c_str(&module))
    }

    fn file_version(&self, index: u32, base: u64) -> Option<[u16; 4]> {
        // VS_FIXEDFILEINFO: 13 DWORDs; signature 0xFEEF04BD, then StrucVersion, FileVersionMS/LS.
        let mut info = [0u8; 52];
        let mut size = 0u32;
        let item = b"\\\0";
        // SAFETY: info is valid for 52 bytes; item is NUL-terminated.
        unsafe {
            self.syms.GetModuleVersionInformation(
                index,
                base,
                PCSTR(item.as_ptr()),
                Some(info.as_mut_ptr().cast()),
                info.len() as u32,
                Some(&mut size),
            )
        }
        .ok()?;
        let dw = |i: usize| {
            u32::from_le_bytes([
                info[4 * i],
                info[4 * i + 1],
                info[4 * i + 2],
                info[4 * i + 3],
            ])
        };
        if size < 16 || dw(0) != 0xFEEF_04BD {
            return None;
        }
        let (ms, ls) = (dw(2), dw(3));
        Some([(ms >> 16) as u16, ms as u16, (ls >> 16) as u16, ls as u16])
    }

    fn list_modules(&self) -> Result<Vec<ModuleInfo>, TargetError> {
        let (mut loaded, mut unloaded) = (0u32, 0u32);
        // SAFETY: out pointers are valid locals.
        unsafe { self.syms.GetNumberModules(&mut loaded, &mut unloaded) }.map_err(|e| {
            TargetError::Other(format!("GetNumberModules failed ({})", hr(e.code())))
        })?;
        // Bound the walk: a kernel has a few hundred modules; a corrupt count must not loop for hours.
        let loaded = loaded.min(16_384);
        let mut out = Vec::with_capacity(loaded as usize);
        for index in 0..loaded {
            // SAFETY: plain value call.
            let Ok(base) = (unsafe { self.syms.GetModuleByIndex(index) }) else {
                continue;
            };
            let mut p = DEBUG_MODULE_PARAMETERS::default();
            // SAFETY: one base in, one parameter block out.
            let params = unsafe { self.syms.GetModuleParameters(1, Some(&base), 0, &mut p) }
                .ok()
                .map(|_| p);
            let (image, name) = self.module_names(index);
            let image_name = image
                .rsplit(['\\', '/'])
                .next()
                .unwrap_or_default()
                .to_string();
            let file_version = if VERSIONED.iter().any(|m| m.eq_ignore_ascii_case(&name)) {
                self.file_version(index, base)
            } else {
                None
            };
            out.push(ModuleInfo {
                name,
                image_name,
                base,
                size: params.map_or(0, |p| p.Size),
                timestamp: params.map_or(0, |p| p.TimeDateStamp),
                file_version,
            });
        }
        Ok(out)
    }
}

impl Target for DbgEngTarget {
    fn read_virtual(&self, va: u64, buf: &mut [u8]) -> Result<usize, TargetError> {
        let mut done = 0usize;
        let mut first_error = None;
        while done < buf.len() {
            let Some(at) = va.checked_add(done as u64) else {
                break;
            };
            let end = (done + MAX_READ).min(buf.len());
            match self.read_once(at, &mut buf[done..end]) {
                // DbgEng may stop short at a page or cache-line boundary although the next bytes are
                // readable, so a short read is retried from where it stopped; the loop ends at the
                // first call that returns nothing (the contract of Target::read_virtual).
                Ok(0) => break,
                Ok(n) => done += n,
                Err(code) => {
                    first_error = Some(code);
                    break;
                }
            }
        }
        if done == 0 && !buf.is_empty() {
            let reason = match first_error {
                Some(code) => format!("ReadVirtual failed ({})", hr(code)),
                None => "ReadVirtual returned no bytes".to_string(),
            };
            return Err(TargetError::Unreadable {
                va,
                len: buf.len(),
                reason,
            });
        }
        Ok(done)
    }

    fn modules(&self) -> Result<Vec<ModuleInfo>, TargetError> {
        if let Some(m) = self.modules.borrow().as_ref() {
            return Ok(m.clone());
        }
        let m = self.list_modules()?;
        *self.modules.borrow_mut() = Some(m.clone());
        Ok(m)
    }

    fn symbol_address(&self, module: &str, symbol: &str) -> Result<u64, TargetError> {
        let no_symbol = |reason: String| TargetError::NoSymbol {
            module: module.into(),
            symbol: symbol.into(),
            reason,
        };
        let name = cstring(&format!("{module}!{symbol}")).map_err(no_symbol)?;
        // SAFETY: NUL-terminated name.
        match unsafe { self.syms.GetOffsetByName(PCSTR(name.as_ptr().cast())) } {
            Ok(va) => Ok(va),
            Err(e) => {
                let m = cstring(module).map_err(no_symbol)?;
                // SAFETY: NUL-terminated name; the index/base outputs are optional.
                let known = unsafe {
                    self.syms
                        .GetModuleByModuleName(PCSTR(m.as_ptr().cast()), 0, None, None)
                };
                if known.is_err() {
                    Err(TargetError::NoModule(module.into()))
                } else {
                    Err(no_symbol(format!(
                        "GetOffsetByName failed ({}); check .sympath and .reload",
                        hr(e.code())
                    )))
                }
            }
        }
    }

    fn type_size(&self, module: &str, ty: &str) -> Result<u64, TargetError> {
        let (base, id) = self.type_id(module, ty)?;
        // SAFETY: plain value call.
        unsafe { self.syms.GetTypeSize(base, id) }
            .map(u64::from)
            .map_err(|e| TargetError::NoType {
                module: module.into(),
                ty: ty.into(),
                field: None,
                reason: format!("GetTypeSize failed ({})", hr(e.code())),
            })
    }

    fn field_offset(&self, module: &str, ty: &str, field: &str) -> Result<u64, TargetError> {
        let key = (module.to_string(), ty.to_string(), field.to_string());
        if let Some(r) = self.fields.borrow().get(&key) {
            return r.clone();
        }
        let no_field = |reason: String| TargetError::NoType {
            module: module.into(),
            ty: ty.into(),
            field: Some(field.into()),
            reason,
        };
        let r = self.type_id(module, ty).and_then(|(base, id)| {
            let f = cstring(field).map_err(no_field)?;
            // GetFieldOffset takes dotted paths ("Pcb.DirectoryTableBase") as `dt` does.
            // SAFETY: NUL-terminated field name.
            unsafe { self.syms.GetFieldOffset(base, id, PCSTR(f.as_ptr().cast())) }
                .map(u64::from)
                .map_err(|e| no_field(format!("GetFieldOffset failed ({})", hr(e.code()))))
        });
        self.fields.borrow_mut().insert(key, r.clone());
        r
    }

    fn clock(&self) -> TargetClock {
        // Seconds since 1970 and seconds of uptime (IDebugControl2); FILETIME counts 100 ns
        // from 1601, 11644473600 s earlier.
        // SAFETY: plain value calls.
        let now = unsafe { self.ctl.GetCurrentTimeDate() }
            .ok()
            .filter(|t| *t != 0);
        let up = unsafe { self.ctl.GetCurrentSystemUpTime() }
            .ok()
            .filter(|t| *t != 0);
        TargetClock {
            system_time: now.map(|t| (u64::from(t) + 11_644_473_600) * 10_000_000),
            uptime: up.map(|t| u64::from(t) * 10_000_000),
        }
    }

    fn build_number(&self) -> Option<u32> {
        let (mut platform, mut major, mut minor, mut kd_minor) = (0u32, 0u32, 0u32, 0u32);
        // For kernel targets the KD minor version is the build number (7601, 19041, ...).
        // SAFETY: out pointers are valid locals.
        unsafe {
            self.ctl.GetSystemVersionValues(
                &mut platform,
                &mut major,
                &mut minor,
                None,
                Some(&mut kd_minor),
            )
        }
        .ok()?;
        (kd_minor != 0).then_some(kd_minor)
    }

    fn interrupted(&self) -> bool {
        // The windows crate maps S_FALSE ("no interrupt pending") to Ok as well, so the raw
        // vtable slot is called and compared with S_OK (dbgeng-wine-notes 5.3).
        // SAFETY: the vtable belongs to a live IDebugControl4.
        let r =
            unsafe { (Interface::vtable(&self.ctl).GetInterrupt)(Interface::as_raw(&self.ctl)) };
        r == windows_core::HRESULT(0)
    }

    fn describe(&self) -> String {
        "DbgEng (the debugger's current target)".into()
    }
}

fn cstring(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("the name {s:?} contains a NUL character"))
}

fn c_str(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}
