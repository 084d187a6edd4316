/* Type shapes the PDB reader must get right, each offset pinned with _Static_assert.
 * Regenerate shapes.sys + shapes.pdb with ./gen-shapes.sh (clang + lld-link). */
typedef unsigned char UCHAR;
typedef unsigned short USHORT;
typedef unsigned long ULONG; /* LLP64: 4 bytes, as in the Windows headers */
typedef unsigned long long ULONG64;
#define OFF(T, F) __builtin_offsetof(T, F)

typedef struct _LIST_ENTRY { struct _LIST_ENTRY *Flink, *Blink; } LIST_ENTRY;

/* Only ever declared: a pointer to it must still describe its target by name. */
struct _OPAQUE;

typedef enum _STATE { StateIdle = 0, StateBusy = 7 } STATE;

typedef struct _KPROCESS {
    UCHAR Header[0x18];
    LIST_ENTRY ProfileListHead;          /* 0x18 */
    ULONG64 DirectoryTableBase;          /* 0x28 */
    union {                              /* anonymous: members are promoted, as MSVC does */
        ULONG Flags;                     /* 0x30 */
        struct {
            ULONG AutoAlignment : 1;     /* bit 0 */
            ULONG DisableBoost : 1;      /* bit 1 */
            ULONG Reserved : 30;         /* bits 2..31 */
        };
    };
    volatile ULONG StackCount;           /* 0x34, behind an LF_MODIFIER */
} KPROCESS;
_Static_assert(OFF(KPROCESS, DirectoryTableBase) == 0x28, "DTB");
_Static_assert(OFF(KPROCESS, Flags) == 0x30, "Flags");
_Static_assert(OFF(KPROCESS, StackCount) == 0x34, "StackCount");
_Static_assert(sizeof(KPROCESS) == 0x38, "KPROCESS size");

typedef union _LARGE { struct { ULONG LowPart; long HighPart; } u; ULONG64 QuadPart; } LARGE;

typedef struct _EPROCESS {
    KPROCESS Pcb;                        /* 0x00 */
    UCHAR Pad1[0x2e0 - 0x38];
    void *UniqueProcessId;               /* 0x2e0 */
    LIST_ENTRY ActiveProcessLinks;       /* 0x2e8 */
    LARGE CreateTime;                    /* 0x2f8 */
    LIST_ENTRY Threads[3];               /* 0x300 */
    struct _OPAQUE *Opaque;              /* 0x330 */
    STATE State;                         /* 0x338 */
    UCHAR ImageFileName[15];             /* 0x33c */
    UCHAR Pad2[0x12340 - 0x34b];
    ULONG Far;                           /* 0x12340: needs a 4-byte numeric leaf */
} EPROCESS;
_Static_assert(OFF(EPROCESS, UniqueProcessId) == 0x2e0, "pid");
_Static_assert(OFF(EPROCESS, ActiveProcessLinks) == 0x2e8, "apl");
_Static_assert(OFF(EPROCESS, CreateTime) == 0x2f8, "ct");
_Static_assert(OFF(EPROCESS, Threads) == 0x300, "threads");
_Static_assert(OFF(EPROCESS, Opaque) == 0x330, "opaque");
_Static_assert(OFF(EPROCESS, State) == 0x338, "state");
_Static_assert(OFF(EPROCESS, ImageFileName) == 0x33c, "name");
_Static_assert(OFF(EPROCESS, Far) == 0x12340, "far");
_Static_assert(sizeof(EPROCESS) == 0x12348, "EPROCESS size");

/* 5000 members: more than one LF_FIELDLIST record holds, so the list continues (LF_INDEX). */
#define F10(p) ULONG p##0, p##1, p##2, p##3, p##4, p##5, p##6, p##7, p##8, p##9;
#define F100(p) F10(p##0) F10(p##1) F10(p##2) F10(p##3) F10(p##4) F10(p##5) F10(p##6) F10(p##7) F10(p##8) F10(p##9)
#define F1000(p) F100(p##0) F100(p##1) F100(p##2) F100(p##3) F100(p##4) F100(p##5) F100(p##6) F100(p##7) F100(p##8) F100(p##9)
typedef struct _WIDE { F1000(a) F1000(b) F1000(c) F1000(d) F1000(e) ULONG Last; } WIDE;
_Static_assert(OFF(WIDE, Last) == 20000, "Last");
_Static_assert(OFF(WIDE, c500) == 4 * 2500, "c500");

EPROCESS ShapeProcess;
LIST_ENTRY PsActiveProcessHead;
WIDE ShapeWide;
ULONG KeMaximumIncrement = 156250;

ULONG ShapeTouch(void) { return KeMaximumIncrement + ShapeWide.Last + ShapeProcess.Far; }
void ShapeEntry(void) { ShapeTouch(); }
