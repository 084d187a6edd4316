"""Per-build kernel type layouts and module tables for the fake Windows modules.

Everything here is the generator's *intent*: gen.py turns these tables into C
(with `_Static_assert` pins, so clang must agree) and into the manifests the
symbols crate's tests compare against the PDBs that lld writes.

Sources (see README.md for the full citations):
  VG   novafacing/vergilius-rs `headers/bindings-<build>-x64.h` (PDB-derived type
       dumps): 6.1.7601.17514, 10.0.17763.107, 10.0.19041.1288, 10.0.22000.194,
       10.0.22621.382.
  F19  /work/shared/reference/tcpip-afd-facts.md section 1.9 (EPROCESS table).
  F110 tcpip-afd-facts.md section 1.10 and dump-format-facts.md section 1.8
       (KUSER_SHARED_DATA).
  F17  dump-format-facts.md section 1.7 (KDDEBUGGER_DATA64, from WDBGEXTS.H).
  INF  inferred: 20348 (Server 2022) has no PDB-derived dump in any source found.
       Its field offsets equal both 19041 and 22000/22621 (F19), so they are
       certain enough; its *sizes* follow 22000.194 (the nearest later build)
       and are marked inferred in the manifest.
"""

# C spelling and size of each scalar token used in field specs.
SCALARS = {
    "UCHAR": ("unsigned char", 1),
    "USHORT": ("unsigned short", 2),
    "WCHAR": ("unsigned short", 2),
    "SHORT": ("short", 2),
    "ULONG": ("unsigned long", 4),
    "LONG": ("long", 4),
    "ULONGLONG": ("unsigned long long", 8),
    "LONGLONG": ("long long", 8),
    "PVOID": ("void *", 8),
}


def F(offset, name, ctype, count=None):
    """One member: byte offset, name, type token, optional array length.

    ctype is a SCALARS key, "struct _X" / "union _X" (embedded), or any C type
    ending in "*" (a pointer, 8 bytes).
    """
    return (offset, name, ctype, count)


class Builds:
    """Per-build facts. Offsets are equal across builds unless listed here."""

    TABLE = {
        7601: dict(
            version=(6, 1, 7601, 17514), branch="win7sp1_rtm.101119-1850",
            nt_major=6, nt_minor=1, source="VG 6.1.7601.17514", inferred=False,
            kprocess_size=0x160, eprocess_size=0x4D0, kuser_size=0x5F0,
            handle_table=dict(size=0x68, TableCode=0x0, QuotaProcess=0x8,
                              UniqueProcessId=0x10, HandleTableList=0x20),
            # Kernel PDBs before 10240 have no _KLDR_DATA_TABLE_ENTRY (VG has it
            # from 10.0.10240 on; 7600, 7601, 9200, 9600 list only
            # _LDR_DATA_TABLE_ENTRY), so PsLoadedModuleList entries must be read
            # through the LDR type there. The leading offsets are the same.
            has_kldr=False, ldr_size=0xE0,
            kdbg_size=0x340, port_roots=("TcpPortPool", "UdpPortPool"),
            eprocess=dict(UniqueProcessId=0x180, ActiveProcessLinks=0x188,
                          CreateTime=0x168, ExitTime=0x170, ObjectTable=0x200,
                          InheritedFromUniqueProcessId=0x290,
                          ImageFileName=0x2E0, ExitStatus=0x444),
        ),
        17763: dict(
            version=(10, 0, 17763, 1), branch="WinBuild.160101.0800",
            nt_major=10, nt_minor=0, source="VG 10.0.17763.107", inferred=False,
            kprocess_size=0x2D8, eprocess_size=0x850, kuser_size=0x710,
            ldr_size=0x120,
            eprocess=dict(UniqueProcessId=0x2E0, ActiveProcessLinks=0x2E8,
                          CreateTime=0x308, ExitTime=0x690, ObjectTable=0x418,
                          InheritedFromUniqueProcessId=0x3E0,
                          ImageFileName=0x450, ExitStatus=0x624),
        ),
        19041: dict(
            version=(10, 0, 19041, 1), branch="WinBuild.160101.0800",
            nt_major=10, nt_minor=0, source="VG 10.0.19041.1288", inferred=False,
            kprocess_size=0x438, eprocess_size=0xA40, kuser_size=0x720,
            ldr_size=0x120,
        ),
        20348: dict(
            version=(10, 0, 20348, 1), branch="WinBuild.160101.0800",
            nt_major=10, nt_minor=0, inferred=True,
            source="INF: offsets = 19041 = 22000/22621 (F19); sizes follow VG 10.0.22000.194",
            kprocess_size=0x438, eprocess_size=0xB80, kuser_size=0x730,
            ldr_size=0x138,
        ),
        22621: dict(
            version=(10, 0, 22621, 1), branch="WinBuild.160101.0800",
            nt_major=10, nt_minor=0, source="VG 10.0.22621.382", inferred=False,
            kprocess_size=0x438, eprocess_size=0xB80, kuser_size=0x738,
            ldr_size=0x138,
        ),
    }

    # Fields shared by every Win10/11 build (VG 17763.107, 19041.1288, 22621.382
    # agree; F19 gives the same EPROCESS offsets for 19041..22621).
    WIN10_DEFAULTS = dict(
        handle_table=dict(size=0x80, TableCode=0x8, QuotaProcess=0x10,
                          UniqueProcessId=0x28, HandleTableList=0x18),
        has_kldr=True, kdbg_size=0x3A0,
        port_roots=("TcpCompartmentSet", "UdpCompartmentSet"),
        eprocess=dict(UniqueProcessId=0x440, ActiveProcessLinks=0x448,
                      CreateTime=0x468, ExitTime=0x840, ObjectTable=0x570,
                      InheritedFromUniqueProcessId=0x540,
                      ImageFileName=0x5A8, ExitStatus=0x7D4),
    )

    @classmethod
    def get(cls, build):
        b = dict(cls.WIN10_DEFAULTS) if build != 7601 else {}
        b.update(cls.TABLE[build])
        b["build"] = build
        return b


def kdbg_fields(size):
    """KDDEBUGGER_DATA64 per WDBGEXTS.H (F17). Not a type Microsoft's PDB has."""
    fields = [
        F(0x000, "Header", "struct _DBGKD_DEBUG_DATA_HEADER64"),
        F(0x018, "KernBase", "ULONGLONG"),
        F(0x020, "BreakpointWithStatus", "ULONGLONG"),
        F(0x028, "SavedContext", "ULONGLONG"),
        F(0x030, "ThCallbackStack", "USHORT"),
        F(0x032, "NextCallback", "USHORT"),
        F(0x034, "FramePointer", "USHORT"),
        F(0x036, "PaeEnabled", "USHORT"),
        F(0x038, "KiCallUserMode", "ULONGLONG"),
        F(0x040, "KeUserCallbackDispatcher", "ULONGLONG"),
        F(0x048, "PsLoadedModuleList", "ULONGLONG"),
        F(0x050, "PsActiveProcessHead", "ULONGLONG"),
        F(0x058, "PspCidTable", "ULONGLONG"),
        F(0x078, "KeTimeIncrement", "ULONGLONG"),
        F(0x088, "KiBugcheckData", "ULONGLONG"),
        F(0x098, "ObpRootDirectoryObject", "ULONGLONG"),
        F(0x0A0, "ObpTypeObjectType", "ULONGLONG"),
        F(0x0C0, "MmPfnDatabase", "ULONGLONG"),
        F(0x0C8, "MmSystemPtesStart", "ULONGLONG"),
        F(0x0D0, "MmSystemPtesEnd", "ULONGLONG"),
        F(0x0E8, "MmLowestPhysicalPage", "ULONGLONG"),
        F(0x0F0, "MmHighestPhysicalPage", "ULONGLONG"),
        F(0x0F8, "MmNumberOfPhysicalPages", "ULONGLONG"),
        F(0x138, "MmPageSize", "ULONGLONG"),
        F(0x1C8, "MmHighestUserAddress", "ULONGLONG"),
        F(0x1D0, "MmSystemRangeStart", "ULONGLONG"),
        F(0x1D8, "MmUserProbeAddress", "ULONGLONG"),
        F(0x200, "MmLoadedUserImageList", "ULONGLONG"),
        F(0x208, "NtBuildLab", "ULONGLONG"),
        F(0x210, "KiNormalSystemCall", "ULONGLONG"),
        F(0x218, "KiProcessorBlock", "ULONGLONG"),
        F(0x220, "MmUnloadedDrivers", "ULONGLONG"),
        F(0x228, "MmLastUnloadedDriver", "ULONGLONG"),
        F(0x268, "CmNtCSDVersion", "ULONGLONG"),
        F(0x270, "MmPhysicalMemoryBlock", "ULONGLONG"),
        F(0x278, "MmSessionBase", "ULONGLONG"),
        F(0x280, "MmSessionSize", "ULONGLONG"),
        F(0x290, "MmVirtualTranslationBase", "ULONGLONG"),
        F(0x298, "OffsetKThreadNextProcessor", "USHORT"),
        F(0x29A, "OffsetKThreadTeb", "USHORT"),
        F(0x29C, "OffsetKThreadKernelStack", "USHORT"),
        F(0x29E, "OffsetKThreadInitialStack", "USHORT"),
        F(0x2A0, "OffsetKThreadApcProcess", "USHORT"),
        F(0x2A2, "OffsetKThreadState", "USHORT"),
        F(0x2A8, "SizeEProcess", "USHORT"),
        F(0x2AA, "OffsetEprocessPeb", "USHORT"),
        F(0x2AC, "OffsetEprocessParentCID", "USHORT"),
        F(0x2AE, "OffsetEprocessDirectoryTableBase", "USHORT"),
        F(0x2B0, "SizePrcb", "USHORT"),
        F(0x2B4, "OffsetPrcbCurrentThread", "USHORT"),
        F(0x2BC, "OffsetPrcbProcStateContext", "USHORT"),
        F(0x2C0, "SizeEThread", "USHORT"),
        F(0x2C8, "KdPrintCircularBufferPtr", "ULONGLONG"),
        F(0x2D0, "KdPrintBufferSize", "ULONGLONG"),
        F(0x2D8, "KeLoaderBlock", "ULONGLONG"),
        F(0x330, "EtwpDebuggerData", "ULONGLONG"),
        F(0x338, "OffsetPrcbContext", "USHORT"),
    ]
    if size > 0x340:
        # The newer tail (F17): present from Windows 8 / 10 onward.
        fields += [
            F(0x33A, "OffsetPrcbMaxBreakpoints", "USHORT"),
            F(0x33C, "OffsetPrcbMaxWatchpoints", "USHORT"),
            F(0x340, "OffsetKThreadStackLimit", "ULONG"),
            F(0x344, "OffsetKThreadStackBase", "ULONG"),
            F(0x348, "OffsetKThreadQueueListEntry", "ULONG"),
            F(0x34C, "OffsetEThreadIrpList", "ULONG"),
            F(0x360, "PteBase", "ULONGLONG"),
            F(0x368, "RetpolineStubFunctionTable", "ULONGLONG"),
            F(0x390, "PointerAuthMask", "ULONGLONG"),
            F(0x398, "OffsetPrcbExceptionStack", "USHORT"),
        ]
    return fields


def kernel_types(b):
    """Ordered (dependency order) list of (name, size, fields, meta) for one build."""
    ep = b["eprocess"]
    ht = b["handle_table"]
    win10 = b["build"] >= 10240
    src = b["source"]
    T = []

    def add(name, size, fields, source=src, in_real_pdb=True, kind="struct"):
        T.append(dict(name=name, size=size, fields=fields, source=source,
                      in_real_pdb=in_real_pdb, kind=kind))

    add("_LIST_ENTRY", 0x10, [F(0, "Flink", "struct _LIST_ENTRY *"),
                              F(8, "Blink", "struct _LIST_ENTRY *")])
    add("_LIST_ENTRY64", 0x10, [F(0, "Flink", "ULONGLONG"), F(8, "Blink", "ULONGLONG")])
    add("_UNICODE_STRING", 0x10, [F(0, "Length", "USHORT"), F(2, "MaximumLength", "USHORT"),
                                  F(8, "Buffer", "WCHAR *")])
    # LARGE_INTEGER is a union in the real PDB; its parts struct is declared at
    # file scope so no LF_NESTTYPE is needed (fixtures-and-oracles.md).
    add("_LARGE_INTEGER_PARTS", 0x8, [F(0, "LowPart", "ULONG"), F(4, "HighPart", "LONG")],
        in_real_pdb=False)
    add("_LARGE_INTEGER", 0x8, [F(0, "u", "struct _LARGE_INTEGER_PARTS"),
                                F(0, "QuadPart", "LONGLONG")], kind="union")
    add("_KSYSTEM_TIME", 0xC, [F(0, "LowPart", "ULONG"), F(4, "High1Time", "LONG"),
                               F(8, "High2Time", "LONG")])
    add("_DISPATCHER_HEADER", 0x18, [
        F(0, "Type", "UCHAR"), F(1, "Signalling", "UCHAR"), F(2, "Size", "UCHAR"),
        F(3, "Reserved1", "UCHAR"), F(4, "SignalState", "LONG"),
        F(8, "WaitListHead", "struct _LIST_ENTRY")])
    add("_KPROCESS", b["kprocess_size"], [
        F(0x00, "Header", "struct _DISPATCHER_HEADER"),
        F(0x18, "ProfileListHead", "struct _LIST_ENTRY"),
        F(0x28, "DirectoryTableBase", "ULONGLONG")])
    add("_HANDLE_TABLE", ht["size"], sorted([
        F(ht["TableCode"], "TableCode", "ULONGLONG"),
        F(ht["QuotaProcess"], "QuotaProcess", "struct _EPROCESS *"),
        F(ht["UniqueProcessId"], "UniqueProcessId", "PVOID" if not win10 else "ULONG"),
        F(ht["HandleTableList"], "HandleTableList", "struct _LIST_ENTRY")]))
    add("_EPROCESS", b["eprocess_size"], sorted([
        F(0, "Pcb", "struct _KPROCESS"),
        F(ep["CreateTime"], "CreateTime", "union _LARGE_INTEGER"),
        F(ep["ExitTime"], "ExitTime", "union _LARGE_INTEGER"),
        F(ep["UniqueProcessId"], "UniqueProcessId", "PVOID"),
        F(ep["ActiveProcessLinks"], "ActiveProcessLinks", "struct _LIST_ENTRY"),
        F(ep["ObjectTable"], "ObjectTable", "struct _HANDLE_TABLE *"),
        F(ep["InheritedFromUniqueProcessId"], "InheritedFromUniqueProcessId", "PVOID"),
        F(ep["ImageFileName"], "ImageFileName", "UCHAR", 15),
        F(ep["ExitStatus"], "ExitStatus", "LONG")]),
        source=src + "; offsets F19")
    ldr_fields = [
        F(0x00, "InLoadOrderLinks", "struct _LIST_ENTRY"),
        F(0x30, "DllBase", "PVOID"), F(0x38, "EntryPoint", "PVOID"),
        F(0x40, "SizeOfImage", "ULONG"),
        F(0x48, "FullDllName", "struct _UNICODE_STRING"),
        F(0x58, "BaseDllName", "struct _UNICODE_STRING")]
    add("_LDR_DATA_TABLE_ENTRY", b["ldr_size"], ldr_fields)
    if b["has_kldr"]:
        add("_KLDR_DATA_TABLE_ENTRY", 0xA0, ldr_fields)
    kuser = [
        F(0x000, "TickCountLowDeprecated", "ULONG"),
        F(0x004, "TickCountMultiplier", "ULONG"),
        F(0x008, "InterruptTime", "struct _KSYSTEM_TIME"),
        F(0x014, "SystemTime", "struct _KSYSTEM_TIME"),
        F(0x020, "TimeZoneBias", "struct _KSYSTEM_TIME"),
        F(0x02C, "ImageNumberLow", "USHORT"), F(0x02E, "ImageNumberHigh", "USHORT"),
        F(0x030, "NtSystemRoot", "WCHAR", 260),
        F(0x244, "LargePageMinimum", "ULONG"),
        F(0x264, "NtProductType", "ULONG"),
        F(0x268, "ProductTypeIsValid", "UCHAR"),
        F(0x26C, "NtMajorVersion", "ULONG"), F(0x270, "NtMinorVersion", "ULONG"),
        F(0x274, "ProcessorFeatures", "UCHAR", 64),
        F(0x2C8, "SystemExpirationDate", "union _LARGE_INTEGER"),
        F(0x2D0, "SuiteMask", "ULONG"), F(0x2D4, "KdDebuggerEnabled", "UCHAR"),
        F(0x2E8, "NumberOfPhysicalPages", "ULONG"),
        # TickCount (KSYSTEM_TIME) and TickCountQuad share 0x320 in a union in
        # the real type; the fixture names the u64 view (F110).
        F(0x320, "TickCountQuad", "ULONGLONG"),
        F(0x3B0, "InterruptTimeBias", "ULONGLONG"),
        F(0x3C0, "ActiveProcessorCount", "ULONG"),
    ]
    if win10:
        # Not in the 7601 layout: 0x248..0x264 is Reserved2[7] there (VG, F110).
        kuser += [F(0x260, "NtBuildNumber", "ULONG"),
                  F(0x26A, "NativeProcessorArchitecture", "USHORT"),
                  F(0x2C4, "BootId", "ULONG"), F(0x300, "QpcFrequency", "LONGLONG")]
    add("_KUSER_SHARED_DATA", b["kuser_size"], sorted(kuser), source=src + "; F110")
    add("_RTL_BITMAP", 0x10, [F(0, "SizeOfBitMap", "ULONG"), F(8, "Buffer", "ULONG *")])
    add("_RTL_DYNAMIC_HASH_TABLE_ENTRY", 0x18, [
        F(0x00, "Linkage", "struct _LIST_ENTRY"), F(0x10, "Signature", "ULONGLONG")])
    add("_RTL_DYNAMIC_HASH_TABLE", 0x28, [
        F(0x00, "Flags", "ULONG"), F(0x04, "Shift", "ULONG"), F(0x08, "TableSize", "ULONG"),
        F(0x0C, "Pivot", "ULONG"), F(0x10, "DivisorMask", "ULONG"),
        F(0x14, "NumEntries", "ULONG"), F(0x18, "NonEmptyBuckets", "ULONG"),
        F(0x1C, "NumEnumerators", "ULONG"), F(0x20, "Directory", "PVOID")])
    oh = [F(0x00, "PointerCount", "LONGLONG"), F(0x08, "HandleCount", "LONGLONG"),
          F(0x10, "Lock", "PVOID"), F(0x18, "TypeIndex", "UCHAR"),
          F(0x19, "TraceFlags", "UCHAR"), F(0x1A, "InfoMask", "UCHAR"),
          F(0x1B, "Flags", "UCHAR"), F(0x20, "ObjectCreateInfo", "PVOID"),
          F(0x28, "SecurityDescriptor", "PVOID"), F(0x30, "Body", "ULONGLONG")]
    if win10:
        oh.append(F(0x1C, "Reserved", "ULONG"))
    # The object body starts at +0x30; the type is 0x38 because Body (a _QUAD)
    # is its last member (VG, all builds).
    add("_OBJECT_HEADER", 0x38, sorted(oh))
    add("_FILE_OBJECT", 0xD8, [
        F(0x00, "Type", "SHORT"), F(0x02, "Size", "SHORT"),
        F(0x08, "DeviceObject", "PVOID"), F(0x10, "Vpb", "PVOID"),
        F(0x18, "FsContext", "PVOID"), F(0x20, "FsContext2", "PVOID"),
        F(0x40, "RelatedFileObject", "struct _FILE_OBJECT *"),
        F(0x50, "Flags", "ULONG"), F(0x58, "FileName", "struct _UNICODE_STRING")])
    # The real PreviousSize/PoolIndex/BlockSize/PoolType are 8-bit bitfields of
    # one ULONG; plain bytes give the same offsets (memory model: x64 header).
    add("_POOL_HEADER", 0x10, [
        F(0, "PreviousSize", "UCHAR"), F(1, "PoolIndex", "UCHAR"),
        F(2, "BlockSize", "UCHAR"), F(3, "PoolType", "UCHAR"),
        F(4, "PoolTag", "ULONG"), F(8, "ProcessBilled", "struct _EPROCESS *")])
    add("_DBGKD_DEBUG_DATA_HEADER64", 0x18, [
        F(0x00, "List", "struct _LIST_ENTRY64"), F(0x10, "OwnerTag", "ULONG"),
        F(0x14, "Size", "ULONG")], source="F17 (WDBGEXTS.H)", in_real_pdb=False)
    add("_KDDEBUGGER_DATA64", b["kdbg_size"], kdbg_fields(b["kdbg_size"]),
        source="F17 (WDBGEXTS.H)", in_real_pdb=False)
    return T


# Kernel globals: (public name, C type, exported?). All in .data (writable).
NT_GLOBALS = [
    ("PsActiveProcessHead", "struct _LIST_ENTRY", False),
    ("PsLoadedModuleList", "struct _LIST_ENTRY", True),
    ("KdDebuggerDataBlock", "struct _KDDEBUGGER_DATA64", False),
    ("KeMaximumIncrement", "ULONG", False),
    ("KiWaitNever", "ULONGLONG", False),
    ("KiWaitAlways", "ULONGLONG", False),
    ("KdpDataBlockEncoded", "UCHAR", False),
    ("MmPfnDatabase", "PVOID", False),
    ("PspCidTable", "struct _HANDLE_TABLE *", False),
    ("PoolBigPageTable", "PVOID", False),
    ("PoolBigPageTableSize", "ULONGLONG", False),
    ("NtBuildNumber", "ULONG", True),
]


def tcpip_globals(b):
    """tcpip.sys publics (tcpip-afd-facts.md 1.1): data only, no types."""
    tcp_root, udp_root = b["port_roots"]
    return [("PartitionTable", "PVOID", 8), ("PartitionCount", "ULONG", 4),
            (tcp_root, "PVOID", 8), (udp_root, "PVOID", 8)]


# afd.sys publics (tcpip-afd-facts.md 2.6): LIST_ENTRY-sized heads.
AFD_GLOBALS = [("AfdEndpointListHead", "PVOID", 16), ("AfdTlTransportListHead", "PVOID", 16)]
