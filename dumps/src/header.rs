//! DUMP_HEADER64, the 0x2000-byte header at the start of every 64-bit kernel dump (facts 1.1),
//! with its AMD64 CONTEXT and EXCEPTION_RECORD64 (facts 1.3).

use crate::error::{Error, Result};

/// Size of DUMP_HEADER64; the payload (pages, or a bitmap/RDMP header) starts here.
pub const HEADER_SIZE: u64 = 0x2000;
/// `MachineImageType` of x64.
pub const MACHINE_AMD64: u32 = 0x8664;
/// DUMP_FILE_ATTRIBUTES bit 8, EncryptedDumpData (facts 1.6).
pub const ATTR_ENCRYPTED: u32 = 1 << 8;

/// Byte offsets inside DUMP_HEADER64 and its CONTEXT (facts 1.1, 1.3).
pub(crate) mod off {
    pub const SIGNATURE: usize = 0x000;
    pub const VALID_DUMP: usize = 0x004;
    pub const MAJOR_VERSION: usize = 0x008;
    pub const MINOR_VERSION: usize = 0x00C;
    pub const DTB: usize = 0x010;
    pub const PFN_DATABASE: usize = 0x018;
    pub const PS_LOADED_MODULE_LIST: usize = 0x020;
    pub const PS_ACTIVE_PROCESS_HEAD: usize = 0x028;
    pub const MACHINE: usize = 0x030;
    pub const PROCESSORS: usize = 0x034;
    pub const BUGCHECK_CODE: usize = 0x038;
    pub const BUGCHECK_PARAMS: usize = 0x040;
    pub const VERSION_USER: usize = 0x060;
    pub const KD_DEBUGGER_DATA_BLOCK: usize = 0x080;
    pub const PHYS_MEM_BLOCK: usize = 0x088;
    /// Bytes of the PhysicalMemoryBlockBuffer union.
    pub const PHYS_MEM_BLOCK_LEN: usize = 700;
    pub const CONTEXT: usize = 0x348;
    /// Bytes of the AMD64 CONTEXT structure proper.
    pub const CONTEXT_USED: usize = 0x4D0;
    pub const EXCEPTION: usize = 0xF00;
    pub const EXCEPTION_LEN: usize = 0x98;
    pub const DUMP_TYPE: usize = 0xF98;
    pub const REQUIRED_DUMP_SPACE: usize = 0xFA0;
    pub const SYSTEM_TIME: usize = 0xFA8;
    pub const COMMENT: usize = 0xFB0;
    pub const COMMENT_LEN: usize = 128;
    pub const SYSTEM_UPTIME: usize = 0x1030;
    pub const MINI_DUMP_FIELDS: usize = 0x1038;
    pub const SECONDARY_DATA_STATE: usize = 0x103C;
    pub const PRODUCT_TYPE: usize = 0x1040;
    pub const SUITE_MASK: usize = 0x1044;
    pub const WRITER_STATUS: usize = 0x1048;
    pub const KD_SECONDARY_VERSION: usize = 0x104D;
    pub const ATTRIBUTES: usize = 0x1050;
    pub const BOOT_ID: usize = 0x1054;

    // Inside CONTEXT.
    pub const CTX_FLAGS: usize = 0x30;
    pub const CTX_MXCSR: usize = 0x34;
    pub const CTX_SEG_CS: usize = 0x38;
    pub const CTX_EFLAGS: usize = 0x44;
    pub const CTX_DR0: usize = 0x48;
    pub const CTX_RAX: usize = 0x78;
    pub const CTX_RIP: usize = 0xF8;
    /// FltSave (XSAVE_FORMAT) keeps its own MxCsr copy.
    pub const CTX_FLT_MXCSR: usize = 0x118;
}

pub(crate) fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
pub(crate) fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}
pub(crate) fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}

/// The dump varieties that carry physical memory (facts 2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum DumpType {
    /// 1: legacy complete dump; pages described by up to 42 runs in the header.
    Full,
    /// 5: bitmap dump ("BMP"), FDMP summary header.
    #[default]
    BitmapFull,
    /// 6: bitmap kernel / live kernel dump, SDMP summary header.
    BitmapKernel,
    /// 8: WinDbg `.dump /k`, RDMP header with PFN ranges.
    Kernel,
    /// 9: WinDbg `.dump /ka`, RDMP header with PFN ranges.
    KernelActive,
    /// 10: WinDbg `.dump /f`, RDMP header with PFN ranges and a page total.
    Complete,
}

impl DumpType {
    /// The `DumpType` value stored at header offset 0xF98.
    pub const fn value(self) -> u32 {
        match self {
            DumpType::Full => 1,
            DumpType::BitmapFull => 5,
            DumpType::BitmapKernel => 6,
            DumpType::Kernel => 8,
            DumpType::KernelActive => 9,
            DumpType::Complete => 10,
        }
    }

    /// A short human name.
    pub const fn name(self) -> &'static str {
        match self {
            DumpType::Full => "full (run-based)",
            DumpType::BitmapFull => "bitmap full",
            DumpType::BitmapKernel => "bitmap kernel (live)",
            DumpType::Kernel => "kernel memory (RDMP)",
            DumpType::KernelActive => "kernel and active user memory (RDMP)",
            DumpType::Complete => "complete memory (RDMP)",
        }
    }

    /// Decodes a `DumpType` value; values without physical memory or unknown are errors.
    pub fn from_value(value: u32) -> Result<Self> {
        let unsupported = |name, why| Err(Error::UnsupportedDumpType { value, name, why });
        match value {
            1 => Ok(DumpType::Full),
            5 => Ok(DumpType::BitmapFull),
            6 => Ok(DumpType::BitmapKernel),
            8 => Ok(DumpType::Kernel),
            9 => Ok(DumpType::KernelActive),
            10 => Ok(DumpType::Complete),
            2 => unsupported(
                "summary",
                "legacy (pre-Windows 8) summary dumps use a different bitmap layout",
            ),
            3 => unsupported("header only", "the dump holds no memory"),
            4 => unsupported(
                "triage / small memory dump",
                "a small memory dump holds no physical memory",
            ),
            7 => unsupported(
                "automatic",
                "7 names a crash-dump setting, not a file layout",
            ),
            _ => unsupported("unknown", "no known Windows dump uses this value"),
        }
    }

    /// True for the bitmap-indexed types 5 and 6.
    pub const fn is_bitmap(self) -> bool {
        matches!(self, DumpType::BitmapFull | DumpType::BitmapKernel)
    }

    /// True for the RDMP types 8, 9 and 10.
    pub const fn is_rdmp(self) -> bool {
        matches!(
            self,
            DumpType::Kernel | DumpType::KernelActive | DumpType::Complete
        )
    }
}

/// The registers of the AMD64 CONTEXT saved in the header (the processor that crashed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Context {
    pub context_flags: u32,
    /// CONTEXT.MxCsr (offset 0x34).
    pub mx_csr: u32,
    /// FltSave.MxCsr (CONTEXT offset 0x118); Windows keeps it equal to `mx_csr` and the C++
    /// kdmp-parser refuses dumps where it is not (facts 1.3).
    pub flt_mx_csr: u32,
    /// SegCs, SegDs, SegEs, SegFs, SegGs, SegSs.
    pub segs: [u16; 6],
    pub eflags: u32,
    /// Dr0, Dr1, Dr2, Dr3, Dr6, Dr7.
    pub dr: [u64; 6],
    /// Rax, Rcx, Rdx, Rbx, Rsp, Rbp, Rsi, Rdi, R8..R15 (CONTEXT order).
    pub gpr: [u64; 16],
    pub rip: u64,
}

impl Context {
    /// Names of [`Context::gpr`] in order.
    pub const GPR_NAMES: [&'static str; 16] = [
        "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15",
    ];

    /// Parses the CONTEXT at the start of `b` (at least 0x4D0 bytes).
    pub(crate) fn parse(b: &[u8]) -> Self {
        let mut c = Context {
            context_flags: u32_at(b, off::CTX_FLAGS),
            mx_csr: u32_at(b, off::CTX_MXCSR),
            flt_mx_csr: u32_at(b, off::CTX_FLT_MXCSR),
            eflags: u32_at(b, off::CTX_EFLAGS),
            rip: u64_at(b, off::CTX_RIP),
            ..Default::default()
        };
        for (i, s) in c.segs.iter_mut().enumerate() {
            *s = u16_at(b, off::CTX_SEG_CS + 2 * i);
        }
        for (i, d) in c.dr.iter_mut().enumerate() {
            *d = u64_at(b, off::CTX_DR0 + 8 * i);
        }
        for (i, r) in c.gpr.iter_mut().enumerate() {
            *r = u64_at(b, off::CTX_RAX + 8 * i);
        }
        c
    }

    /// Writes the fields into a zeroed CONTEXT buffer (at least 0x4D0 bytes).
    pub(crate) fn write(&self, b: &mut [u8]) {
        b[off::CTX_FLAGS..][..4].copy_from_slice(&self.context_flags.to_le_bytes());
        b[off::CTX_MXCSR..][..4].copy_from_slice(&self.mx_csr.to_le_bytes());
        b[off::CTX_FLT_MXCSR..][..4].copy_from_slice(&self.flt_mx_csr.to_le_bytes());
        b[off::CTX_EFLAGS..][..4].copy_from_slice(&self.eflags.to_le_bytes());
        b[off::CTX_RIP..][..8].copy_from_slice(&self.rip.to_le_bytes());
        for (i, s) in self.segs.iter().enumerate() {
            b[off::CTX_SEG_CS + 2 * i..][..2].copy_from_slice(&s.to_le_bytes());
        }
        for (i, d) in self.dr.iter().enumerate() {
            b[off::CTX_DR0 + 8 * i..][..8].copy_from_slice(&d.to_le_bytes());
        }
        for (i, r) in self.gpr.iter().enumerate() {
            b[off::CTX_RAX + 8 * i..][..8].copy_from_slice(&r.to_le_bytes());
        }
    }
}

/// EXCEPTION_RECORD64 at header offset 0xF00.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExceptionRecord {
    pub code: u32,
    pub flags: u32,
    pub record: u64,
    pub address: u64,
    pub number_parameters: u32,
    pub information: [u64; 15],
}

impl ExceptionRecord {
    pub(crate) fn parse(b: &[u8]) -> Self {
        let mut e = ExceptionRecord {
            code: u32_at(b, 0),
            flags: u32_at(b, 4),
            record: u64_at(b, 8),
            address: u64_at(b, 0x10),
            number_parameters: u32_at(b, 0x18),
            information: [0; 15],
        };
        for (i, v) in e.information.iter_mut().enumerate() {
            *v = u64_at(b, 0x20 + 8 * i);
        }
        e
    }

    pub(crate) fn write(&self, b: &mut [u8]) {
        b[..off::EXCEPTION_LEN].fill(0);
        b[0..4].copy_from_slice(&self.code.to_le_bytes());
        b[4..8].copy_from_slice(&self.flags.to_le_bytes());
        b[8..16].copy_from_slice(&self.record.to_le_bytes());
        b[0x10..0x18].copy_from_slice(&self.address.to_le_bytes());
        b[0x18..0x1C].copy_from_slice(&self.number_parameters.to_le_bytes());
        for (i, v) in self.information.iter().enumerate() {
            b[0x20 + 8 * i..][..8].copy_from_slice(&v.to_le_bytes());
        }
    }
}

/// Every field of DUMP_HEADER64 a reader may want (facts 1.1). The type-1 run list is parsed by
/// the page index, not here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub major_version: u32,
    /// The OS build number (e.g. 19041).
    pub minor_version: u32,
    /// CR3 as stored (may carry PCID bits; see [`Header::dtb`]).
    pub directory_table_base: u64,
    pub pfn_database: u64,
    pub ps_loaded_module_list: u64,
    pub ps_active_process_head: u64,
    pub machine_image_type: u32,
    pub number_processors: u32,
    pub bugcheck_code: u32,
    pub bugcheck_parameters: [u64; 4],
    pub version_user: [u8; 32],
    pub kd_debugger_data_block: u64,
    pub context: Context,
    pub exception: ExceptionRecord,
    pub dump_type: DumpType,
    pub required_dump_space: u64,
    /// FILETIME (100 ns since 1601-01-01 UTC).
    pub system_time: u64,
    /// The `.dump /c` comment; empty when the field holds only "PAGE" fill or NULs.
    pub comment: String,
    /// 100 ns units since boot.
    pub system_uptime: u64,
    pub mini_dump_fields: u32,
    pub secondary_data_state: u32,
    pub product_type: u32,
    pub suite_mask: u32,
    pub writer_status: u32,
    pub kd_secondary_version: u8,
    pub attributes: u32,
    pub boot_id: u32,
}

/// The repeating fill Windows leaves in unused header bytes (facts 1.1).
pub(crate) const FILL: [u8; 4] = *b"PAGE";

fn is_fill(b: &[u8]) -> bool {
    b.chunks(4).all(|c| c == &FILL[..c.len()])
}

impl Header {
    /// Parses and checks the header at the start of `file`. Order of checks (facts 2.4): signature,
    /// DumpType, encryption, machine.
    pub fn parse(file: &[u8]) -> Result<Self> {
        if file.len() < 8 {
            if file.starts_with(b"MDMP") {
                return Err(Error::Minidump);
            }
            return Err(Error::Truncated {
                what: "DUMP_HEADER64 signature",
                need: 8,
                len: file.len() as u64,
            });
        }
        match &file[..8] {
            b"PAGEDU64" => {}
            b"PAGEDUMP" => return Err(Error::Dump32),
            s if s.starts_with(b"MDMP") => return Err(Error::Minidump),
            s => {
                return Err(Error::NotADump {
                    found: String::from_utf8_lossy(s).escape_debug().to_string(),
                })
            }
        }
        if (file.len() as u64) < HEADER_SIZE {
            return Err(Error::Truncated {
                what: "DUMP_HEADER64",
                need: HEADER_SIZE,
                len: file.len() as u64,
            });
        }
        let b = &file[..HEADER_SIZE as usize];
        let dump_type = DumpType::from_value(u32_at(b, off::DUMP_TYPE))?;
        let attributes = u32_at(b, off::ATTRIBUTES);
        if attributes & ATTR_ENCRYPTED != 0 {
            return Err(Error::Encrypted { attributes });
        }
        let machine = u32_at(b, off::MACHINE);
        if machine != MACHINE_AMD64 {
            let name = match machine {
                0x014C => "x86",
                0xAA64 => "ARM64",
                0x01C4 => "ARM Thumb-2",
                0x0200 => "Itanium",
                _ => "unknown",
            };
            return Err(Error::Machine { machine, name });
        }
        let comment_bytes = &b[off::COMMENT..off::COMMENT + off::COMMENT_LEN];
        let comment = if is_fill(comment_bytes) {
            String::new()
        } else {
            let end = comment_bytes
                .iter()
                .position(|&c| c == 0)
                .unwrap_or(comment_bytes.len());
            String::from_utf8_lossy(&comment_bytes[..end]).into_owned()
        };
        let mut bugcheck_parameters = [0u64; 4];
        for (i, p) in bugcheck_parameters.iter_mut().enumerate() {
            *p = u64_at(b, off::BUGCHECK_PARAMS + 8 * i);
        }
        Ok(Header {
            major_version: u32_at(b, off::MAJOR_VERSION),
            minor_version: u32_at(b, off::MINOR_VERSION),
            directory_table_base: u64_at(b, off::DTB),
            pfn_database: u64_at(b, off::PFN_DATABASE),
            ps_loaded_module_list: u64_at(b, off::PS_LOADED_MODULE_LIST),
            ps_active_process_head: u64_at(b, off::PS_ACTIVE_PROCESS_HEAD),
            machine_image_type: machine,
            number_processors: u32_at(b, off::PROCESSORS),
            bugcheck_code: u32_at(b, off::BUGCHECK_CODE),
            bugcheck_parameters,
            version_user: b[off::VERSION_USER..off::VERSION_USER + 32]
                .try_into()
                .expect("32 bytes"),
            kd_debugger_data_block: u64_at(b, off::KD_DEBUGGER_DATA_BLOCK),
            context: Context::parse(&b[off::CONTEXT..off::CONTEXT + off::CONTEXT_USED]),
            exception: ExceptionRecord::parse(
                &b[off::EXCEPTION..off::EXCEPTION + off::EXCEPTION_LEN],
            ),
            dump_type,
            required_dump_space: u64_at(b, off::REQUIRED_DUMP_SPACE),
            system_time: u64_at(b, off::SYSTEM_TIME),
            comment,
            system_uptime: u64_at(b, off::SYSTEM_UPTIME),
            mini_dump_fields: u32_at(b, off::MINI_DUMP_FIELDS),
            secondary_data_state: u32_at(b, off::SECONDARY_DATA_STATE),
            product_type: u32_at(b, off::PRODUCT_TYPE),
            suite_mask: u32_at(b, off::SUITE_MASK),
            writer_status: u32_at(b, off::WRITER_STATUS),
            kd_secondary_version: b[off::KD_SECONDARY_VERSION],
            attributes,
            boot_id: u32_at(b, off::BOOT_ID),
        })
    }

    /// The DTB as a physical address: CR3 bits 51:12, i.e. without PCID (bits 11:0) and the
    /// no-flush bit 63 (facts 3.1).
    pub const fn dtb(&self) -> crate::gxa::Gpa {
        crate::gxa::Gpa(self.directory_table_base & crate::pxe::PFN_MASK)
    }
}
