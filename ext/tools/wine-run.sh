#!/bin/sh
# Cargo runner for x86_64-pc-windows-gnu: runs a PE under Wine, headless, quiet and self-initialising.
#
#   ext/tools/wine-run.sh prog.exe [args...]
#
# - WINEPREFIX: $PORTLEAK_WINEPREFIX, else <CARGO_TARGET_DIR or <workspace>/target>/wineprefix. It is
#   created on first use (about 2 s) under a flock, so parallel runs do not race wineboot.
# - bcryptprimitives.dll (Rust std imports ProcessPrng from it; Wine 8 lacks it) is built from
#   ext/tools/bcryptprimitives.c with mingw-w64 and installed into the prefix's system32.
# - No display, no Mono/Gecko install prompts, no winemenubuilder, Wine's own chatter silenced except
#   module load errors (a missing DLL must be visible).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
prefix=${PORTLEAK_WINEPREFIX:-${CARGO_TARGET_DIR:-$root/target}/wineprefix}

export WINEPREFIX="$prefix"
export WINEDEBUG="${WINEDEBUG:--all,err+module}"
export WINEDLLOVERRIDES="mscoree,mshtml=;winemenubuilder.exe=d"
export WINEARCH=win64
unset DISPLAY WAYLAND_DISPLAY

mkdir -p "$(dirname "$prefix")"
(
    flock 9
    if [ ! -f "$prefix/.portleak-ready" ]; then
        wineboot --init >/dev/null 2>&1 || { echo "wine-run.sh: wineboot failed for $prefix" >&2; exit 1; }
        wineserver -w
        touch "$prefix/.portleak-ready"
    fi
    stub="$prefix/drive_c/windows/system32/bcryptprimitives.dll"
    if [ ! -f "$stub" ] || [ "$here/bcryptprimitives.c" -nt "$stub" ]; then
        x86_64-w64-mingw32-gcc -O2 -shared -s -o "$stub.tmp" "$here/bcryptprimitives.c" -ladvapi32
        mv "$stub.tmp" "$stub"
    fi
) 9>"$prefix.lock"

exec wine "$@"
