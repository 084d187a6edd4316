/*
 * A stand-in for Windows' bcryptprimitives.dll, for running Rust programs under Wine 8.
 *
 * Rust's std (1.78 and later) on Windows draws randomness (HashMap seeds) from
 * bcryptprimitives!ProcessPrng, which Windows 10+ has and Wine 8 does not; without this DLL every
 * Rust .exe fails to start under Wine 8 with a missing-import error. It is only for the test host
 * under Wine and is never shipped with portleak.dll: on Windows the real DLL is used.
 *
 * Build: x86_64-w64-mingw32-gcc -O2 -shared -s -o bcryptprimitives.dll bcryptprimitives.c -ladvapi32
 * (ext/tools/wine-run.sh does this and installs it into the Wine prefix's system32).
 */
#include <windows.h>

/* advapi32!SystemFunction036 is RtlGenRandom; Wine implements it. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* ProcessPrng fills the buffer and, as documented, always returns TRUE. Large requests are fed
 * in ULONG-sized pieces because RtlGenRandom takes a 32-bit length. */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
