//! The fake DbgEng engine: one COM object that answers as IDebugClient, IDebugControl4,
//! IDebugDataSpaces and IDebugSymbols3, backed by any [`portleak::Target`].
//!
//! Only the methods portleak.dll calls are implemented (inherent methods below, named as in the
//! interfaces); `stubs.rs` (generated) routes them and answers E_NOTIMPL for the rest, as a real
//! engine does for an unsupported call. The contracts follow the DbgEng documentation:
//! GetInterrupt answers S_OK only when an interrupt is pending and S_FALSE otherwise; ReadVirtual
//! succeeds on a partial read and reports the count; Output* formats are printf formats.

// The inherent methods carry the interface method names so `stubs.rs` can route to them by name.
#![allow(non_snake_case)]

use crate::printf;
use portleak::{ModuleInfo, Target};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use windows::Win32::Foundation::{E_FAIL, E_INVALIDARG, E_NOTIMPL, E_POINTER, S_FALSE};
use windows::Win32::System::Diagnostics::Debug::Extensions::*;
use windows_core::{implement, Result, HRESULT, PCSTR, PCWSTR, PSTR};

/// What ReadVirtual reports for memory that is not there: HRESULT_FROM_WIN32(ERROR_READ_FAULT).
const READ_FAULT: HRESULT = HRESULT(0x8007_001E_u32 as i32);

/// One Output* call as the user would see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub mask: u32,
    /// The call was ControlledOutput* with DEBUG_OUTCTL_AMBIENT_DML (or DEBUG_OUTCTL_DML).
    pub dml: bool,
    /// The text after printf formatting.
    pub text: String,
    /// A printf problem in the format (an unescaped conversion), if any.
    pub format_error: Option<String>,
}

/// How the fake engine behaves; the checks change it between commands.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// GetEngineOptions reports DEBUG_ENGOPT_PREFER_DML.
    pub prefer_dml: bool,
    /// GetInterrupt answers S_OK from this poll on (0 = already pending).
    pub interrupt_after: Option<u64>,
    /// ReadVirtual stops at the end of the 4 KiB page it starts in, even when the next page is
    /// readable (as engines reading through a page cache do); the caller must continue.
    pub split_reads_at_pages: bool,
}

#[implement(IDebugClient, IDebugControl4, IDebugDataSpaces, IDebugSymbols3)]
pub struct Engine {
    target: Box<dyn Target>,
    modules: Vec<ModuleInfo>,
    pub behaviour: RefCell<Behaviour>,
    pub records: RefCell<Vec<Record>>,
    pub calls: RefCell<BTreeMap<&'static str, u64>>,
    polls: Cell<u64>,
    types: RefCell<Vec<(String, String)>>,
    /// Names passed to GetSymbolTypeId during the current command.
    type_queries: RefCell<std::collections::BTreeSet<String>>,
}

impl Engine {
    pub fn new(target: Box<dyn Target>) -> Self {
        let modules = target.modules().unwrap_or_default();
        Self {
            target,
            modules,
            behaviour: RefCell::default(),
            records: RefCell::default(),
            calls: RefCell::default(),
            polls: Cell::new(0),
            types: RefCell::default(),
            type_queries: RefCell::default(),
        }
    }

    /// Forgets the output and counters of the previous command.
    pub fn reset(&self) {
        self.records.borrow_mut().clear();
        self.calls.borrow_mut().clear();
        self.polls.set(0);
        self.type_queries.borrow_mut().clear();
    }

    /// How many different types the current command asked GetSymbolTypeId for.
    pub fn distinct_types(&self) -> u64 {
        self.type_queries.borrow().len() as u64
    }

    pub fn count(&self, method: &str) -> u64 {
        self.calls.borrow().get(method).copied().unwrap_or(0)
    }

    fn called(&self, method: &'static str) {
        *self.calls.borrow_mut().entry(method).or_default() += 1;
    }

    fn record(&self, control: Option<u32>, mask: u32, format: Vec<u16>) {
        let dml = control.is_some_and(|c| {
            c == DEBUG_OUTCTL_AMBIENT_DML
                || (c != DEBUG_OUTCTL_AMBIENT_TEXT && c & DEBUG_OUTCTL_DML != 0)
        });
        let (text, format_error) = printf::format(&String::from_utf16_lossy(&format));
        self.records.borrow_mut().push(Record {
            mask,
            dml,
            text,
            format_error,
        });
    }

    fn module(&self, name: &str) -> Option<(usize, &ModuleInfo)> {
        self.modules
            .iter()
            .enumerate()
            .find(|(_, m)| m.name.eq_ignore_ascii_case(name))
    }

    // ---- IDebugControl4 ----

    pub fn GetInterrupt(&self) -> Result<()> {
        self.called("GetInterrupt");
        let n = self.polls.get();
        self.polls.set(n + 1);
        match self.behaviour.borrow().interrupt_after {
            Some(k) if n >= k => Ok(()),
            _ => Err(S_FALSE.into()),
        }
    }

    pub fn SetInterrupt(&self, _flags: u32) -> Result<()> {
        self.behaviour.borrow_mut().interrupt_after = Some(0);
        Ok(())
    }

    pub fn Output(&self, mask: u32, format: &PCSTR) -> Result<()> {
        self.called("Output");
        self.record(None, mask, narrow(format)?);
        Ok(())
    }

    pub fn ControlledOutput(&self, control: u32, mask: u32, format: &PCSTR) -> Result<()> {
        self.called("ControlledOutput");
        self.record(Some(control), mask, narrow(format)?);
        Ok(())
    }

    pub fn OutputWide(&self, mask: u32, format: &PCWSTR) -> Result<()> {
        self.called("OutputWide");
        self.record(None, mask, wide(format)?);
        Ok(())
    }

    pub fn ControlledOutputWide(&self, control: u32, mask: u32, format: &PCWSTR) -> Result<()> {
        self.called("ControlledOutputWide");
        self.record(Some(control), mask, wide(format)?);
        Ok(())
    }

    pub fn GetEngineOptions(&self) -> Result<u32> {
        Ok(if self.behaviour.borrow().prefer_dml {
            DEBUG_ENGOPT_PREFER_DML
        } else {
            0
        })
    }

    pub fn GetCurrentTimeDate(&self) -> Result<u32> {
        // FILETIME (100 ns since 1601) to seconds since 1970.
        let ft = self.target.clock().system_time.ok_or(E_NOTIMPL)?;
        Ok((ft / 10_000_000).saturating_sub(11_644_473_600) as u32)
    }

    pub fn GetCurrentSystemUpTime(&self) -> Result<u32> {
        let up = self.target.clock().uptime.ok_or(E_NOTIMPL)?;
        Ok((up / 10_000_000) as u32)
    }

    pub fn GetSystemVersionValues(
        &self,
        platformid: *mut u32,
        win32major: *mut u32,
        win32minor: *mut u32,
        kdmajor: *mut u32,
        kdminor: *mut u32,
    ) -> Result<()> {
        let build = self.target.build_number().ok_or(E_FAIL)?;
        // VER_PLATFORM_WIN32_NT; KD major 0xF is a free build. Win32 version numbers are not what
        // portleak uses; 10.0 is what the engine reports for current kernels.
        for (p, v) in [
            (platformid, 2),
            (win32major, 10),
            (win32minor, 0),
            (kdmajor, 0xF),
            (kdminor, build),
        ] {
            // SAFETY: out pointers from the caller, each checked for null.
            unsafe { put(p, v) };
        }
        Ok(())
    }

    // ---- IDebugDataSpaces ----

    pub fn ReadVirtual(
        &self,
        offset: u64,
        buffer: *mut core::ffi::c_void,
        size: u32,
        bytesread: *mut u32,
    ) -> Result<()> {
        self.called("ReadVirtual");
        if buffer.is_null() && size != 0 {
            return Err(E_POINTER.into());
        }
        let mut len = size as usize;
        if self.behaviour.borrow().split_reads_at_pages {
            len = len.min((0x1000 - (offset & 0xFFF)) as usize);
        }
        // SAFETY: the caller passes a buffer valid for `size` bytes; len <= size.
        let buf = unsafe { std::slice::from_raw_parts_mut(buffer.cast::<u8>(), len) };
        match self.target.read_virtual(offset, buf) {
            Ok(n) if n > 0 || len == 0 => {
                // SAFETY: optional out pointer.
                unsafe { put(bytesread, n as u32) };
                Ok(())
            }
            _ => {
                // SAFETY: optional out pointer.
                unsafe { put(bytesread, 0) };
                Err(READ_FAULT.into())
            }
        }
    }

    // ---- IDebugSymbols3 ----

    pub fn GetOffsetByName(&self, symbol: &PCSTR) -> Result<u64> {
        self.called("GetOffsetByName");
        let s = ansi(symbol)?;
        let (m, name) = s.split_once('!').ok_or(E_INVALIDARG)?;
        self.target
            .symbol_address(m, name)
            .map_err(|_| E_FAIL.into())
    }

    pub fn GetModuleByModuleName(
        &self,
        name: &PCSTR,
        start: u32,
        index: *mut u32,
        base: *mut u64,
    ) -> Result<()> {
        let n = ansi(name)?;
        let (i, m) = self
            .module(&n)
            .filter(|(i, _)| *i >= start as usize)
            .ok_or(E_INVALIDARG)?;
        // SAFETY: optional out pointers.
        unsafe {
            put(index, i as u32);
            put(base, m.base);
        }
        Ok(())
    }

    pub fn GetNumberModules(&self, loaded: *mut u32, unloaded: *mut u32) -> Result<()> {
        // SAFETY: optional out pointers.
        unsafe {
            put(loaded, self.modules.len() as u32);
            put(unloaded, 0);
        }
        Ok(())
    }

    pub fn GetModuleByIndex(&self, index: u32) -> Result<u64> {
        self.modules
            .get(index as usize)
            .map(|m| m.base)
            .ok_or_else(|| E_INVALIDARG.into())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn GetModuleNames(
        &self,
        index: u32,
        base: u64,
        image: PSTR,
        image_len: u32,
        image_size: *mut u32,
        module: PSTR,
        module_len: u32,
        module_size: *mut u32,
        loaded: PSTR,
        loaded_len: u32,
        loaded_size: *mut u32,
    ) -> Result<()> {
        let m = if index == DEBUG_ANY_ID {
            self.modules.iter().find(|m| m.base == base)
        } else {
            self.modules.get(index as usize)
        }
        .ok_or(E_INVALIDARG)?;
        // The debugger reports the image path as loaded; a path exercises the file-name split.
        let path = format!("\\SystemRoot\\system32\\drivers\\{}", m.image_name);
        // SAFETY: buffers and sizes come from the caller.
        unsafe {
            copy_out(&path, image, image_len, image_size);
            copy_out(&m.name, module, module_len, module_size);
            copy_out(&path, loaded, loaded_len, loaded_size);
        }
        Ok(())
    }

    pub fn GetModuleParameters(
        &self,
        count: u32,
        bases: *const u64,
        start: u32,
        params: *mut DEBUG_MODULE_PARAMETERS,
    ) -> Result<()> {
        if params.is_null() {
            return Err(E_POINTER.into());
        }
        for i in 0..count as usize {
            let m = if bases.is_null() {
                self.modules.get(start as usize + i)
            } else {
                // SAFETY: the caller passes `count` bases.
                let b = unsafe { *bases.add(i) };
                self.modules.iter().find(|m| m.base == b)
            }
            .ok_or(E_INVALIDARG)?;
            let p = DEBUG_MODULE_PARAMETERS {
                Base: m.base,
                Size: m.size,
                TimeDateStamp: m.timestamp,
                SymbolType: DEBUG_SYMTYPE_PDB,
                ..Default::default()
            };
            // SAFETY: the caller passes room for `count` parameter blocks.
            unsafe { *params.add(i) = p };
        }
        Ok(())
    }

    pub fn GetSymbolTypeId(
        &self,
        symbol: &PCSTR,
        typeid: *mut u32,
        module: *mut u64,
    ) -> Result<()> {
        self.called("GetSymbolTypeId");
        let s = ansi(symbol)?;
        self.type_queries.borrow_mut().insert(s.clone());
        let (m, ty) = s.split_once('!').ok_or(E_INVALIDARG)?;
        let (_, info) = self.module(m).ok_or(E_FAIL)?;
        let mut types = self.types.borrow_mut();
        let id = match types
            .iter()
            .position(|(tm, tt)| tm.eq_ignore_ascii_case(m) && tt == ty)
        {
            Some(i) => i,
            None => {
                types.push((m.to_string(), ty.to_string()));
                types.len() - 1
            }
        };
        // SAFETY: optional out pointers.
        unsafe {
            put(typeid, id as u32 + 1);
            put(module, info.base);
        }
        Ok(())
    }

    fn type_name(&self, typeid: u32) -> Result<(String, String)> {
        let types = self.types.borrow();
        types
            .get((typeid as usize).wrapping_sub(1))
            .cloned()
            .ok_or_else(|| E_INVALIDARG.into())
    }

    pub fn GetTypeSize(&self, _module: u64, typeid: u32) -> Result<u32> {
        self.called("GetTypeSize");
        let (m, ty) = self.type_name(typeid)?;
        self.target
            .type_size(&m, &ty)
            .map(|s| s as u32)
            .map_err(|_| E_FAIL.into())
    }

    pub fn GetFieldOffset(&self, _module: u64, typeid: u32, field: &PCSTR) -> Result<u32> {
        self.called("GetFieldOffset");
        let (m, ty) = self.type_name(typeid)?;
        let f = ansi(field)?;
        self.target
            .field_offset(&m, &ty, &f)
            .map(|o| o as u32)
            .map_err(|_| E_FAIL.into())
    }

    pub fn GetModuleVersionInformation(
        &self,
        index: u32,
        base: u64,
        item: &PCSTR,
        buffer: *mut core::ffi::c_void,
        size: u32,
        verinfosize: *mut u32,
    ) -> Result<()> {
        self.called("GetModuleVersionInformation");
        if ansi(item)? != "\\" {
            return Err(E_NOTIMPL.into());
        }
        let m = if index == DEBUG_ANY_ID {
            self.modules.iter().find(|m| m.base == base)
        } else {
            self.modules.get(index as usize)
        }
        .ok_or(E_INVALIDARG)?;
        let v = m.file_version.ok_or(E_FAIL)?;
        // VS_FIXEDFILEINFO: signature, struct version, FileVersionMS/LS, ProductVersionMS/LS, ...
        let mut info = [0u32; 13];
        info[0] = 0xFEEF_04BD;
        info[1] = 0x0001_0000;
        info[2] = (u32::from(v[0]) << 16) | u32::from(v[1]);
        info[3] = (u32::from(v[2]) << 16) | u32::from(v[3]);
        info[4] = info[2];
        info[5] = info[3];
        let bytes: Vec<u8> = info.iter().flat_map(|d| d.to_le_bytes()).collect();
        // SAFETY: optional out pointer; the buffer is valid for `size` bytes.
        unsafe {
            put(verinfosize, bytes.len() as u32);
            if !buffer.is_null() {
                let n = bytes.len().min(size as usize);
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), buffer.cast::<u8>(), n);
            }
        }
        Ok(())
    }
}

/// Writes through an optional out pointer.
///
/// # Safety
/// `p` is null or valid for a write of `T`.
unsafe fn put<T>(p: *mut T, v: T) {
    if !p.is_null() {
        // SAFETY: per the function contract.
        unsafe { p.write(v) };
    }
}

/// Copies a NUL-terminated name into a caller buffer, as DbgEng does (truncating, S_OK).
///
/// # Safety
/// `buf` is null or valid for `len` bytes; `size` is null or writable.
unsafe fn copy_out(s: &str, buf: PSTR, len: u32, size: *mut u32) {
    let bytes = s.as_bytes();
    // SAFETY: per the function contract.
    unsafe {
        put(size, bytes.len() as u32 + 1);
        if !buf.is_null() && len > 0 {
            let n = bytes.len().min(len as usize - 1);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.0, n);
            *buf.0.add(n) = 0;
        }
    }
}

fn narrow(p: &PCSTR) -> Result<Vec<u16>> {
    Ok(ansi(p)?.encode_utf16().collect())
}

fn ansi(p: &PCSTR) -> Result<String> {
    if p.is_null() {
        return Err(E_POINTER.into());
    }
    // SAFETY: the caller passes a NUL-terminated string.
    Ok(String::from_utf8_lossy(unsafe { p.as_bytes() }).into_owned())
}

fn wide(p: &PCWSTR) -> Result<Vec<u16>> {
    if p.is_null() {
        return Err(E_POINTER.into());
    }
    // SAFETY: the caller passes a NUL-terminated string.
    Ok(unsafe { p.as_wide() }.to_vec())
}
