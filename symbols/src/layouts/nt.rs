//! ntoskrnl fallback offsets (x64) for dumps whose kernel PDB is unavailable. Sources: VG
//! (PDB-derived vergilius-rs headers), ND24, facts 1.9/1.10 and dump-format-facts 1.7/1.8.

use super::tcpip::TableQuality;
use super::types::Offset;
use serde::Deserialize;

/// Kernel structure offsets for one build.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct NtLayout {
    /// Stable identifier of the table.
    pub id: String,
    /// Builds this table was written for.
    pub builds: Vec<u32>,
    /// Builds sharing the layout.
    #[serde(default)]
    pub family: Vec<u32>,
    /// Overall confidence.
    pub quality: TableQuality,
    /// One-line provenance summary.
    pub summary: String,
    /// `_EPROCESS` (with `Pcb` = `_KPROCESS` at +0).
    pub eprocess: EprocessLayout,
    /// `_KLDR_DATA_TABLE_ENTRY` on `PsLoadedModuleList`.
    pub kldr: KldrLayout,
    /// `_KUSER_SHARED_DATA`.
    pub kuser: KuserLayout,
    /// `_KDDEBUGGER_DATA64`.
    pub kdbg: KdbgLayout,
    /// x64 `POOL_HEADER` and `OBJECT_HEADER` facts.
    pub pool: PoolLayout,
}

/// `_EPROCESS` fields used for attribution.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EprocessLayout {
    /// Bytes the walker reads (covers every field below; not the structure size).
    pub size: u32,
    /// `Pcb.Header.Type` byte (3 = ProcessObject; GH tests the first QWORD == 3).
    pub header_type: Offset,
    /// `Pcb.DirectoryTableBase`.
    pub directory_table_base: Offset,
    /// `UniqueProcessId`.
    pub unique_process_id: Offset,
    /// `ActiveProcessLinks`.
    pub active_process_links: Offset,
    /// `CreateTime` (FILETIME).
    pub create_time: Offset,
    /// `ExitTime` (FILETIME, non-zero once the process exited).
    pub exit_time: Offset,
    /// `ObjectTable` (HANDLE_TABLE*).
    pub object_table: Offset,
    /// `InheritedFromUniqueProcessId`.
    pub inherited_from_unique_process_id: Offset,
    /// `ImageFileName[15]`.
    pub image_file_name: Offset,
    /// `ExitStatus` (NTSTATUS).
    pub exit_status: Offset,
}

/// `_KLDR_DATA_TABLE_ENTRY`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct KldrLayout {
    /// Bytes the walker reads.
    pub size: u32,
    /// `InLoadOrderLinks`.
    pub in_load_order_links: Offset,
    /// `DllBase`.
    pub dll_base: Offset,
    /// `EntryPoint`.
    pub entry_point: Offset,
    /// `SizeOfImage` (u32).
    pub size_of_image: Offset,
    /// `FullDllName` (UNICODE_STRING).
    pub full_dll_name: Offset,
    /// `BaseDllName` (UNICODE_STRING).
    pub base_dll_name: Offset,
}

/// `_KUSER_SHARED_DATA`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct KuserLayout {
    /// Kernel virtual address of the page (fixed on x64, facts 1.10; not in the data files
    /// because TOML integers are signed 64-bit).
    #[serde(skip, default = "kuser_va")]
    pub address: u64,
    /// Bytes the walker reads.
    pub size: u32,
    /// `TickCountMultiplier` (u32).
    pub tick_count_multiplier: Offset,
    /// `InterruptTime` (KSYSTEM_TIME, 100 ns since boot).
    pub interrupt_time: Offset,
    /// `SystemTime` (KSYSTEM_TIME, UTC FILETIME).
    pub system_time: Offset,
    /// `TimeZoneBias` (KSYSTEM_TIME).
    pub time_zone_bias: Offset,
    /// `NtBuildNumber` (u32); absent before Win10.
    #[serde(default)]
    pub nt_build_number: Option<Offset>,
    /// `NtProductType` (u32).
    pub nt_product_type: Offset,
    /// `NtMajorVersion` (u32).
    pub nt_major_version: Offset,
    /// `NtMinorVersion` (u32).
    pub nt_minor_version: Offset,
    /// `TickCount`/`TickCountQuad` (u64).
    pub tick_count_quad: Offset,
    /// `InterruptTimeBias` (u64).
    pub interrupt_time_bias: Offset,
}

fn kuser_va() -> u64 {
    0xFFFF_F780_0000_0000
}

/// `_KDDEBUGGER_DATA64` (fields beyond `Header.Size` are absent).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct KdbgLayout {
    /// Bytes of the longest known block (0x3A0).
    pub size: u32,
    /// `Header.OwnerTag` (u32, "KDBG").
    pub owner_tag: Offset,
    /// `Header.Size` (u32).
    pub header_size: Offset,
    /// `KernBase` (value).
    pub kern_base: Offset,
    /// `PsLoadedModuleList` (address of the list head).
    pub ps_loaded_module_list: Offset,
    /// `PsActiveProcessHead` (address of the list head).
    pub ps_active_process_head: Offset,
    /// `KeTimeIncrement` (address of the variable).
    pub ke_time_increment: Offset,
    /// `MmPfnDatabase` (address of the variable).
    pub mm_pfn_database: Offset,
    /// `KiProcessorBlock` (address of the array).
    pub ki_processor_block: Offset,
    /// `SizeEProcess` (u16).
    pub size_eprocess: Offset,
    /// `OffsetEprocessDirectoryTableBase` (u16).
    pub offset_eprocess_directory_table_base: Offset,
    /// `PteBase` (Win10 RS1+ tail).
    #[serde(default)]
    pub pte_base: Option<Offset>,
}

/// x64 pool and object headers (MEMORY-MODEL.md, facts 2.1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PoolLayout {
    /// `POOL_HEADER` size before a small-pool object.
    pub header_size: u32,
    /// `PoolTag` inside the `POOL_HEADER` (so tag = object - header_size + pool_tag).
    pub pool_tag: Offset,
    /// `_OBJECT_HEADER` size before an executive object body (e.g. EPROCESS).
    pub object_header_size: Offset,
    /// `nt!PoolBigPageTable` entry size.
    pub big_page_entry_size: Offset,
}
