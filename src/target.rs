//! The one door through which the analysis sees a Windows system.
//!
//! The engine reads memory and symbols only through [`Target`]. Two implementations exist and the
//! analysis never knows which one it runs on:
//! - the offline target (`crate::offline`): a crash dump read by `dumps` plus PDBs read by `symbols`;
//! - the DbgEng target in `ext/`: `IDebugDataSpaces` / `IDebugSymbols3` of the debugger that loaded
//!   the extension DLL.
//!
//! Names follow the debugger's conventions so both sides agree: modules by their debugger name
//! (`nt`, `tcpip`, `afd`), types by their PDB name (`_EPROCESS`), nested fields by dotted path
//! (`Pcb.DirectoryTableBase`), exactly as `dt nt!_EPROCESS Pcb.DirectoryTableBase` takes them.

use std::fmt;

/// Why a read or a symbol query failed. Reads fail often in kernel dumps (paged-out or absent
/// pages); callers count those as warnings rather than aborting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// Not one byte could be read at `va`; `reason` says where translation or the read stopped.
    #[error("cannot read {len} bytes at {va:#018x}: {reason}")]
    Unreadable { va: u64, len: usize, reason: String },
    /// The module is not loaded (or not known to the target).
    #[error("module {0} is not loaded")]
    NoModule(String),
    /// The symbol is not in the module's symbols (or no symbols could be loaded for it).
    #[error("no symbol {module}!{symbol}: {reason}")]
    NoSymbol {
        module: String,
        symbol: String,
        reason: String,
    },
    /// The type (or a field of it) is not in the module's symbols.
    #[error("no type information for {module}!{ty}{}: {reason}", field.as_ref().map(|f| format!(".{f}")).unwrap_or_default())]
    NoType {
        module: String,
        ty: String,
        field: Option<String>,
        reason: String,
    },
    /// The user asked the debugger to stop (Ctrl+Break); the caller reports what it has so far.
    #[error("interrupted by the user")]
    Interrupted,
    /// Anything else the back end reports, in its own words.
    #[error("{0}")]
    Other(String),
}

/// A module as the target lists it (PsLoadedModuleList offline, the debugger's module list in ext/).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModuleInfo {
    /// Debugger-style module name: `nt` for the kernel, else the image name without extension.
    pub name: String,
    /// Image file name as loaded, e.g. `ntoskrnl.exe`, `tcpip.sys`.
    pub image_name: String,
    pub base: u64,
    pub size: u32,
    pub timestamp: u32,
    /// File version from VS_VERSION_INFO (major, minor, build, revision) when readable.
    pub file_version: Option<[u16; 4]>,
}

/// What the target knows of the machine's clock outside of memory (the dump header, or
/// `IDebugControl2::GetCurrentTimeDate`/`GetCurrentSystemUpTime`). The engine prefers
/// KUSER_SHARED_DATA and uses these to cross-check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TargetClock {
    /// FILETIME (100 ns since 1601-01-01 UTC) at capture, if known.
    pub system_time: Option<u64>,
    /// Uptime in 100 ns units, if known.
    pub uptime: Option<u64>,
}

/// The engine's view of a Windows kernel. Object-safe; `&self` everywhere so implementations can
/// cache behind interior mutability.
pub trait Target {
    /// Reads up to `buf.len()` bytes at `va` and returns how many were read: reads stop at the
    /// first byte that is unreadable, as `IDebugDataSpaces::ReadVirtual` does. A read of zero bytes
    /// is an error ([`TargetError::Unreadable`]) that says why.
    fn read_virtual(&self, va: u64, buf: &mut [u8]) -> Result<usize, TargetError>;

    /// The loaded kernel modules.
    fn modules(&self) -> Result<Vec<ModuleInfo>, TargetError>;

    /// Address of `module!symbol` (a public or global symbol).
    fn symbol_address(&self, module: &str, symbol: &str) -> Result<u64, TargetError>;

    /// Size in bytes of `module!ty`.
    fn type_size(&self, module: &str, ty: &str) -> Result<u64, TargetError>;

    /// Offset of `field` (a dotted path such as `Pcb.DirectoryTableBase`) inside `module!ty`.
    fn field_offset(&self, module: &str, ty: &str, field: &str) -> Result<u64, TargetError>;

    /// Clock facts known outside memory.
    fn clock(&self) -> TargetClock {
        TargetClock::default()
    }

    /// The OS build number as the back end knows it outside memory (dump header MinorVersion,
    /// `IDebugControl::GetSystemVersion`). KUSER_SHARED_DATA has no NtBuildNumber before Windows
    /// 10 (dump-format-facts 1.8), so on 7601 this is one of the engine's two sources.
    fn build_number(&self) -> Option<u32> {
        None
    }

    /// The address of `nt!PsActiveProcessHead` as the back end knows it without symbols (the dump
    /// header carries it, dump-format-facts 1.1), for when the kernel PDB is missing.
    fn process_list_head(&self) -> Option<u64> {
        None
    }

    /// True once the user asked to stop; long walks poll this and return partial results.
    fn interrupted(&self) -> bool {
        false
    }

    /// A short description of the back end for reports ("MEMORY.DMP (DumpType 5)", "DbgEng").
    fn describe(&self) -> String;
}

/// Typed little-endian reads on top of [`Target::read_virtual`]; exact (all bytes or an error).
pub trait TargetExt: Target {
    fn read_exact(&self, va: u64, buf: &mut [u8]) -> Result<(), TargetError> {
        let n = self.read_virtual(va, buf)?;
        if n == buf.len() {
            Ok(())
        } else {
            Err(TargetError::Unreadable {
                va: va.wrapping_add(n as u64),
                len: buf.len() - n,
                reason: format!("only {n} of {} bytes at {va:#x} are readable", buf.len()),
            })
        }
    }
    fn read_u8(&self, va: u64) -> Result<u8, TargetError> {
        let mut b = [0u8; 1];
        self.read_exact(va, &mut b)?;
        Ok(b[0])
    }
    fn read_u16(&self, va: u64) -> Result<u16, TargetError> {
        let mut b = [0u8; 2];
        self.read_exact(va, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }
    fn read_u32(&self, va: u64) -> Result<u32, TargetError> {
        let mut b = [0u8; 4];
        self.read_exact(va, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn read_u64(&self, va: u64) -> Result<u64, TargetError> {
        let mut b = [0u8; 8];
        self.read_exact(va, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn read_vec(&self, va: u64, len: usize) -> Result<Vec<u8>, TargetError> {
        let mut v = vec![0u8; len];
        self.read_exact(va, &mut v)?;
        Ok(v)
    }
}

impl<T: Target + ?Sized> TargetExt for T {}

impl fmt::Debug for dyn Target + '_ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({})", self.describe())
    }
}
