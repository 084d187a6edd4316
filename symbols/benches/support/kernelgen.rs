//! Writes the C source of a kernel-sized fake `ntkrnlmp` and builds it into a PE + PDB with
//! clang and lld-link (as tests/fixtures do), for the benchmark.
//!
//! The engine's types are laid out at their 19041 x64 offsets (facts doc 1.9, 1.10) and pinned with
//! `_Static_assert`; thousands of generated structs, unions and enums around them give the TPI
//! stream a realistic size, and thousands of globals give the publics a realistic count.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One engine type: members as (C declaration, name, offset) at the offsets the bench checks.
pub struct Wanted {
    pub name: &'static str,
    pub size: u64,
    pub fields: Vec<(&'static str, u64)>,
}

/// Numbers of generated records: thousands of UDTs and tens of thousands of publics, the order of
/// magnitude of a Windows 10 ntkrnlmp.pdb.
pub const GEN_STRUCTS: usize = 6000;
pub const GEN_ENUMS: usize = 600;
pub const GEN_GLOBALS: usize = 30000;

const FIXED: &str = r#"
typedef unsigned char UCHAR; typedef unsigned short USHORT; typedef unsigned long ULONG;
typedef long LONG; typedef unsigned long long ULONG64; typedef long long LONG64;
typedef unsigned short WCHAR; typedef void *PVOID;
#define OFF(T, F) __builtin_offsetof(T, F)
typedef struct _LIST_ENTRY { struct _LIST_ENTRY *Flink, *Blink; } LIST_ENTRY;
typedef struct _LIST_ENTRY64 { ULONG64 Flink, Blink; } LIST_ENTRY64;
typedef struct _UNICODE_STRING { USHORT Length; USHORT MaximumLength; WCHAR *Buffer; } UNICODE_STRING;
typedef struct _KSYSTEM_TIME { ULONG LowPart; LONG High1Time; LONG High2Time; } KSYSTEM_TIME;
typedef union _LARGE_INTEGER { struct { ULONG LowPart; LONG HighPart; }; struct { ULONG LowPart; LONG HighPart; } u; LONG64 QuadPart; } LARGE_INTEGER;
typedef struct _DISPATCHER_HEADER { union { struct { UCHAR Type; UCHAR Signalling; UCHAR Size; UCHAR Reserved1; }; LONG Lock; }; LONG SignalState; LIST_ENTRY WaitListHead; } DISPATCHER_HEADER;
typedef struct _HANDLE_TABLE { ULONG NextHandleNeedingPool; LONG ExtraInfoPages; ULONG64 TableCode; struct _EPROCESS *QuotaProcess; LIST_ENTRY HandleTableList; } HANDLE_TABLE;
typedef struct _KPROCESS {
    DISPATCHER_HEADER Header; LIST_ENTRY ProfileListHead; ULONG64 DirectoryTableBase; LIST_ENTRY ThreadListHead;
    ULONG ProcessLock; ULONG ProcessTimerDelay; ULONG64 DeepFreezeStartTime; PVOID Affinity; ULONG64 AffinityPadding[12];
    LIST_ENTRY ReadyListHead; PVOID SwapListEntry; ULONG64 ActiveProcessors[20];
    union { struct { ULONG AutoAlignment : 1; ULONG DisableBoost : 1; ULONG DisableQuantum : 1; ULONG DeepFreeze : 1; ULONG ReservedFlags : 28; }; LONG ProcessFlags; };
    ULONG ActiveGroupsMask; char BasePriority; char QuantumReset; char Visited; UCHAR Flags;
    USHORT ThreadSeed[20]; USHORT IdealProcessor[20]; USHORT IdealNode[20]; USHORT IdealGlobalNode; USHORT Spare1;
    ULONG64 StackCount; LIST_ENTRY ProcessListEntry; ULONG64 CycleTime; ULONG64 ContextSwitches; PVOID SchedulingGroup;
    ULONG FreezeCount; ULONG KernelTime; ULONG UserTime; ULONG ReadyTime; ULONG64 UserDirectoryTableBase; UCHAR AddressPolicy; UCHAR Spare2[71];
    PVOID InstrumentationCallback; ULONG64 SecureState; ULONG64 KernelWaitTime; ULONG64 UserWaitTime; ULONG64 EndPadding[50];
} KPROCESS;
_Static_assert(OFF(KPROCESS, DirectoryTableBase) == 0x28, "dtb");
_Static_assert(sizeof(KPROCESS) == 0x438, "kprocess");
typedef struct _EPROCESS {
    KPROCESS Pcb; ULONG64 ProcessLock; PVOID UniqueProcessId; LIST_ENTRY ActiveProcessLinks; ULONG64 RundownProtect;
    union { ULONG Flags2; struct { ULONG JobNotReallyActive : 1; ULONG AccountingFolded : 1; ULONG NewProcessReported : 1; ULONG Flags2Rest : 29; }; };
    union { ULONG Flags; struct { ULONG CreateReported : 1; ULONG NoDebugInherit : 1; ULONG ProcessExiting : 1; ULONG FlagsRest : 29; }; };
    LARGE_INTEGER CreateTime; ULONG64 ProcessQuotaUsage[2]; ULONG64 ProcessQuotaPeak[2]; ULONG64 PeakVirtualSize; ULONG64 VirtualSize;
    LIST_ENTRY SessionProcessLinks; PVOID ExceptionPortData; ULONG64 Token; ULONG64 MmReserved; ULONG64 AddressCreationLock;
    ULONG64 PageTableCommitmentLock; PVOID RotateInProgress; PVOID ForkInProgress; PVOID CommitChargeJob; ULONG64 CloneRoot;
    ULONG64 NumberOfPrivatePages; ULONG64 NumberOfLockedPages; PVOID Win32Process; PVOID Job; PVOID SectionObject; PVOID SectionBaseAddress;
    ULONG Cookie; ULONG Spare3; PVOID WorkingSetWatch; PVOID Win32WindowStation; PVOID InheritedFromUniqueProcessId; ULONG64 OwnerProcessId;
    PVOID Peb; PVOID Session; PVOID Spare4; PVOID QuotaBlock; HANDLE_TABLE *ObjectTable; PVOID DebugPort; PVOID WoW64Process;
    PVOID DeviceMap; PVOID EtwDataSource; ULONG64 PageDirectoryPte; PVOID ImageFilePointer; UCHAR ImageFileName[15]; UCHAR PriorityClass;
    PVOID SecurityPort; UCHAR Middle[0x7d4 - 0x5c0]; LONG ExitStatus; UCHAR Late[0x840 - 0x7d8]; LARGE_INTEGER ExitTime; UCHAR Tail[0xa40 - 0x848];
} EPROCESS;
_Static_assert(OFF(EPROCESS, UniqueProcessId) == 0x440, "pid");
_Static_assert(OFF(EPROCESS, ActiveProcessLinks) == 0x448, "apl");
_Static_assert(OFF(EPROCESS, CreateTime) == 0x468, "ct");
_Static_assert(OFF(EPROCESS, InheritedFromUniqueProcessId) == 0x540, "ppid");
_Static_assert(OFF(EPROCESS, ObjectTable) == 0x570, "ot");
_Static_assert(OFF(EPROCESS, ImageFileName) == 0x5a8, "name");
_Static_assert(OFF(EPROCESS, ExitStatus) == 0x7d4, "es");
_Static_assert(OFF(EPROCESS, ExitTime) == 0x840, "et");
_Static_assert(sizeof(EPROCESS) == 0xa40, "eprocess");
typedef struct _KLDR_DATA_TABLE_ENTRY {
    LIST_ENTRY InLoadOrderLinks; PVOID ExceptionTable; ULONG ExceptionTableSize; PVOID GpValue; PVOID NonPagedDebugInfo;
    PVOID DllBase; PVOID EntryPoint; ULONG SizeOfImage; UNICODE_STRING FullDllName; UNICODE_STRING BaseDllName; ULONG Flags;
    USHORT LoadCount; USHORT SignatureLevel; PVOID SectionPointer; ULONG CheckSum; ULONG CoverageSectionSize; PVOID CoverageSection;
    PVOID LoadedImports; PVOID Spare; ULONG SizeOfImageNotRounded; ULONG TimeDateStamp;
} KLDR_DATA_TABLE_ENTRY;
_Static_assert(OFF(KLDR_DATA_TABLE_ENTRY, DllBase) == 0x30, "dllbase");
_Static_assert(OFF(KLDR_DATA_TABLE_ENTRY, SizeOfImage) == 0x40, "soi");
_Static_assert(OFF(KLDR_DATA_TABLE_ENTRY, FullDllName) == 0x48, "full");
_Static_assert(OFF(KLDR_DATA_TABLE_ENTRY, BaseDllName) == 0x58, "base");
_Static_assert(sizeof(KLDR_DATA_TABLE_ENTRY) == 0xa0, "kldr");
typedef struct _KUSER_SHARED_DATA {
    ULONG TickCountLowDeprecated; ULONG TickCountMultiplier; volatile KSYSTEM_TIME InterruptTime; volatile KSYSTEM_TIME SystemTime;
    volatile KSYSTEM_TIME TimeZoneBias; USHORT ImageNumberLow; USHORT ImageNumberHigh; WCHAR NtSystemRoot[260]; ULONG MaxStackTraceDepth;
    ULONG CryptoExponent; ULONG TimeZoneId; ULONG LargePageMinimum; ULONG AitSamplingValue; ULONG AppCompatFlag; ULONG64 RNGSeedVersion;
    ULONG GlobalValidationRunlevel; LONG TimeZoneBiasStamp; ULONG NtBuildNumber; ULONG NtProductType; UCHAR ProductTypeIsValid;
    UCHAR Reserved0[1]; USHORT NativeProcessorArchitecture; ULONG NtMajorVersion; ULONG NtMinorVersion; UCHAR ProcessorFeatures[64];
    ULONG Reserved1; ULONG Reserved3; volatile ULONG TimeSlip; ULONG AlternativeArchitecture; ULONG BootId; LARGE_INTEGER SystemExpirationDate;
    ULONG SuiteMask; UCHAR KdDebuggerEnabled; UCHAR MitigationPolicies; USHORT CyclesPerYield; volatile ULONG ActiveConsoleId;
    volatile ULONG DismountCount; ULONG ComPlusPackage; ULONG LastSystemRITEventTickCount; ULONG NumberOfPhysicalPages; UCHAR SafeBootMode;
    UCHAR VirtualizationFlags; UCHAR Reserved12[2]; ULONG SharedDataFlags; ULONG DataFlagsPad[1]; ULONG64 TestRetInstruction; LONG64 QpcFrequency;
    ULONG SystemCall; ULONG Reserved2; ULONG64 SystemCallPad[2];
    union { volatile KSYSTEM_TIME TickCount; volatile ULONG64 TickCountQuad; ULONG ReservedTickCountOverlay[3]; };
    UCHAR Middle[0x3b0 - 0x330]; volatile ULONG64 InterruptTimeBias; UCHAR Rest[0x720 - 0x3b8];
} KUSER_SHARED_DATA;
_Static_assert(OFF(KUSER_SHARED_DATA, InterruptTime) == 0x8, "it");
_Static_assert(OFF(KUSER_SHARED_DATA, SystemTime) == 0x14, "st");
_Static_assert(OFF(KUSER_SHARED_DATA, NtBuildNumber) == 0x260, "nb");
_Static_assert(OFF(KUSER_SHARED_DATA, NtMajorVersion) == 0x26c, "maj");
_Static_assert(OFF(KUSER_SHARED_DATA, NtMinorVersion) == 0x270, "min");
_Static_assert(OFF(KUSER_SHARED_DATA, TickCount) == 0x320, "tc");
_Static_assert(OFF(KUSER_SHARED_DATA, InterruptTimeBias) == 0x3b0, "itb");
_Static_assert(sizeof(KUSER_SHARED_DATA) == 0x720, "kusd");
typedef struct _RTL_DYNAMIC_HASH_TABLE { ULONG Flags; ULONG Shift; ULONG TableSize; ULONG Pivot; ULONG DivisorMask; ULONG NumEntries;
    ULONG NonEmptyBuckets; ULONG NumEnumerators; PVOID Directory; } RTL_DYNAMIC_HASH_TABLE;
_Static_assert(sizeof(RTL_DYNAMIC_HASH_TABLE) == 0x28, "rdht");
typedef struct _RTL_BITMAP { ULONG SizeOfBitMap; ULONG *Buffer; } RTL_BITMAP;
typedef struct _OBJECT_HEADER { LONG64 PointerCount; union { LONG64 HandleCount; PVOID NextToFree; }; ULONG64 Lock; UCHAR TypeIndex;
    union { UCHAR TraceFlags; struct { UCHAR DbgRefTrace : 1; UCHAR DbgTracePermanent : 1; }; }; UCHAR InfoMask;
    union { UCHAR Flags; struct { UCHAR NewObject : 1; UCHAR KernelObject : 1; UCHAR KernelOnlyAccess : 1; UCHAR ExclusiveObject : 1;
    UCHAR PermanentObject : 1; UCHAR DefaultSecurityQuota : 1; UCHAR SingleHandleEntry : 1; UCHAR DeletedInline : 1; }; };
    ULONG Reserved; union { PVOID ObjectCreateInfo; PVOID QuotaBlockCharged; }; PVOID SecurityDescriptor; ULONG64 Body; } OBJECT_HEADER;
_Static_assert(OFF(OBJECT_HEADER, TypeIndex) == 0x18, "ti");
_Static_assert(OFF(OBJECT_HEADER, Body) == 0x30, "body");
typedef struct _POOL_HEADER { union { struct { USHORT PreviousSize : 8; USHORT PoolIndex : 8; USHORT BlockSize : 8; USHORT PoolType : 8; }; ULONG Ulong1; };
    ULONG PoolTag; union { PVOID ProcessBilled; struct { USHORT AllocatorBackTraceIndex; USHORT PoolTagHash; }; }; } POOL_HEADER;
_Static_assert(OFF(POOL_HEADER, PoolTag) == 4, "tag");
_Static_assert(sizeof(POOL_HEADER) == 0x10, "ph");
typedef struct _DBGKD_DEBUG_DATA_HEADER64 { LIST_ENTRY64 List; ULONG OwnerTag; ULONG Size; } DBGKD_DEBUG_DATA_HEADER64;
typedef struct _KDDEBUGGER_DATA64 { DBGKD_DEBUG_DATA_HEADER64 Header; ULONG64 KernBase; ULONG64 BreakpointWithStatus; ULONG64 SavedContext;
    USHORT ThCallbackStack; USHORT NextCallback; USHORT FramePointer; USHORT PaeEnabled : 1; ULONG64 KiCallUserMode; ULONG64 KeUserCallbackDispatcher;
    ULONG64 PsLoadedModuleList; ULONG64 PsActiveProcessHead; ULONG64 PspCidTable; ULONG64 Rest[(0x3a0 - 0x60) / 8]; } KDDEBUGGER_DATA64;
_Static_assert(OFF(KDDEBUGGER_DATA64, KernBase) == 0x18, "kb");
_Static_assert(OFF(KDDEBUGGER_DATA64, PsLoadedModuleList) == 0x48, "plml");
_Static_assert(sizeof(KDDEBUGGER_DATA64) == 0x3a0, "kdbg");
LIST_ENTRY PsActiveProcessHead; LIST_ENTRY PsLoadedModuleList; KDDEBUGGER_DATA64 KdDebuggerDataBlock; ULONG KeMaximumIncrement = 156250;
"#;

/// The queries the engine makes, with the answers the C above pins.
pub fn wanted() -> Vec<Wanted> {
    vec![
        Wanted {
            name: "_EPROCESS",
            size: 0xa40,
            fields: vec![
                ("UniqueProcessId", 0x440),
                ("ActiveProcessLinks", 0x448),
                ("CreateTime", 0x468),
                ("ExitTime", 0x840),
                ("ImageFileName", 0x5a8),
                ("ObjectTable", 0x570),
                ("InheritedFromUniqueProcessId", 0x540),
                ("Pcb.DirectoryTableBase", 0x28),
            ],
        },
        Wanted {
            name: "_KLDR_DATA_TABLE_ENTRY",
            size: 0xa0,
            fields: vec![
                ("InLoadOrderLinks", 0),
                ("DllBase", 0x30),
                ("SizeOfImage", 0x40),
                ("BaseDllName", 0x58),
                ("FullDllName", 0x48),
            ],
        },
        Wanted {
            name: "_UNICODE_STRING",
            size: 16,
            fields: vec![("Length", 0), ("MaximumLength", 2), ("Buffer", 8)],
        },
        Wanted {
            name: "_LIST_ENTRY",
            size: 16,
            fields: vec![("Flink", 0), ("Blink", 8)],
        },
        Wanted {
            name: "_KUSER_SHARED_DATA",
            size: 0x720,
            fields: vec![
                ("InterruptTime", 8),
                ("SystemTime", 0x14),
                ("TickCountMultiplier", 4),
                ("TickCount", 0x320),
                ("NtBuildNumber", 0x260),
                ("NtMajorVersion", 0x26c),
                ("NtMinorVersion", 0x270),
            ],
        },
        Wanted {
            name: "_RTL_DYNAMIC_HASH_TABLE",
            size: 0x28,
            fields: vec![("TableSize", 8), ("Directory", 0x20)],
        },
        Wanted {
            name: "_RTL_BITMAP",
            size: 0x10,
            fields: vec![("SizeOfBitMap", 0), ("Buffer", 8)],
        },
        Wanted {
            name: "_OBJECT_HEADER",
            size: 0x38,
            fields: vec![("TypeIndex", 0x18), ("InfoMask", 0x1a), ("Body", 0x30)],
        },
        Wanted {
            name: "_POOL_HEADER",
            size: 0x10,
            fields: vec![("BlockSize", 2), ("PoolTag", 4)],
        },
        Wanted {
            name: "_KDDEBUGGER_DATA64",
            size: 0x3a0,
            fields: vec![("KernBase", 0x18), ("PsLoadedModuleList", 0x48)],
        },
    ]
}

/// The publics the engine resolves.
pub const PUBLICS: [&str; 4] = [
    "PsActiveProcessHead",
    "PsLoadedModuleList",
    "KdDebuggerDataBlock",
    "KeMaximumIncrement",
];

/// A small deterministic generator, so every run builds the same PDB.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

fn source() -> String {
    let mut c = String::from(FIXED);
    let mut r = Lcg(0x5eed);
    for e in 0..GEN_ENUMS {
        let _ = write!(c, "typedef enum _GEN_ENUM_{e} {{");
        for k in 0..(3 + r.next(20)) {
            let _ = write!(c, " GenEnum{e}Value{k} = {k},");
        }
        c.push_str(" } GEN_ENUM_");
        let _ = writeln!(c, "{e};");
    }
    let kinds: Vec<&str> = (0..GEN_STRUCTS)
        .map(|_| if r.next(8) == 0 { "union" } else { "struct" })
        .collect();
    for (s, kind) in kinds.iter().enumerate() {
        let _ = writeln!(c, "{kind} _GEN_STRUCT_{s};");
    }
    for (s, kind) in kinds.iter().enumerate() {
        let _ = write!(c, "typedef {kind} _GEN_STRUCT_{s} {{");
        for m in 0..(4 + r.next(36)) {
            let decl = match r.next(9) {
                0 => "ULONG".to_string(),
                1 => "ULONG64".to_string(),
                2 => "USHORT".to_string(),
                3 => {
                    let t = r.next(GEN_STRUCTS);
                    format!("{} _GEN_STRUCT_{t} *", kinds[t])
                }
                // Only the first 200 structs are embedded by value (and embed nothing themselves),
                // so sizes stay bounded instead of compounding.
                4 if s >= 200 => {
                    let t = r.next(200);
                    format!("{} _GEN_STRUCT_{t}", kinds[t])
                }
                5 => "LIST_ENTRY".to_string(),
                6 => format!("GEN_ENUM_{}", r.next(GEN_ENUMS)),
                7 => "ULONG64 /*array*/".to_string(),
                _ => "UNICODE_STRING".to_string(),
            };
            if decl.ends_with("/*array*/") {
                let _ = write!(c, " ULONG64 Member{m}[{}];", 1 + r.next(16));
            } else if m % 11 == 10 {
                let _ = write!(c, " ULONG Bits{m} : {};", 1 + r.next(31));
            } else {
                let _ = write!(c, " {decl} Member{m};");
            }
        }
        let _ = writeln!(c, " }} GEN_STRUCT_{s};");
    }
    for g in 0..GEN_GLOBALS {
        let _ = writeln!(c, "ULONG64 GenGlobal{g};");
    }
    c.push_str("ULONG64 KiSystemStartup(void) { return KeMaximumIncrement + PsActiveProcessHead.Flink->Blink->Flink == 0; }\n");
    c
}

/// Builds (once) `ntkrnlmp.pdb` for the bench under the target directory and returns its path.
pub fn build() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("portleak-bench-kernel");
    let src = source();
    let pdb = dir.join("ntkrnlmp.pdb");
    let stamp = dir.join("source.c");
    if pdb.is_file() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(src.as_str()) {
        return pdb;
    }
    std::fs::create_dir_all(&dir).expect("create bench dir");
    std::fs::write(&stamp, &src).expect("write C source");
    let run = |cmd: &mut Command| {
        let out = cmd.output().unwrap_or_else(|e| {
            panic!("cannot run {cmd:?} (clang and lld are needed for this bench): {e}")
        });
        assert!(
            out.status.success(),
            "{cmd:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(Command::new("clang").current_dir(&dir).args([
        "--target=x86_64-pc-windows-msvc",
        "-c",
        "-gcodeview",
        "-g",
        "-fno-eliminate-unused-debug-types",
        "-O1",
        "-ffreestanding",
        "-fno-stack-protector",
        "source.c",
        "-o",
        "ntkrnlmp.obj",
    ]));
    run(Command::new("lld-link").current_dir(&dir).args([
        "/nologo",
        "/machine:x64",
        "/driver",
        "/subsystem:native",
        "/nodefaultlib",
        "/debug",
        "/brepro",
        "/entry:KiSystemStartup",
        "/pdb:ntkrnlmp.pdb",
        "/pdbaltpath:ntkrnlmp.pdb",
        "/out:ntoskrnl.exe",
        "ntkrnlmp.obj",
    ]));
    pdb
}
