#!/bin/sh
# Builds portleak.dll and the fake DbgEng engine for x86_64-pc-windows-gnu and runs the engine's
# checks under Wine. Ends with the host's `N passed, N failed` line; exits nonzero on failure.
#
#   ext/tools/test.sh [--release] [--verbose]
#
# Needs (Debian 12): wine wine64 gcc-mingw-w64-x86-64 gcc libc6-dev, and
# `rustup target add x86_64-pc-windows-gnu`. Honours CARGO_TARGET_DIR.
set -eu
cd "$(dirname "$0")/../.."

profile=debug
cargo_profile=
host_args=
for a in "$@"; do
    case "$a" in
        --release) profile=release; cargo_profile=--release ;;
        --verbose) host_args="$host_args --verbose" ;;
        *) echo "usage: ext/tools/test.sh [--release] [--verbose]" >&2; exit 2 ;;
    esac
done

target=x86_64-pc-windows-gnu
out="${CARGO_TARGET_DIR:-target}/$target/$profile"

missing=
command -v wine >/dev/null 2>&1 || missing="$missing wine"
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || missing="$missing gcc-mingw-w64-x86-64"
rustup target list --installed 2>/dev/null | grep -qx "$target" || missing="$missing rustup-target:$target"
if [ -n "$missing" ]; then
    echo "ext/tools/test.sh: missing:$missing" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

# A failed step still ends with the verdict line the CI looks for.
fail() {
    echo "ext/tools/test.sh: $1 failed" >&2
    echo "0 passed, 1 failed"
    exit 1
}

echo "== cargo test -p portleak-ext --lib (Linux host)"
cargo test --locked -q -p portleak-ext --lib || fail "cargo test -p portleak-ext --lib"

echo "== cargo build -p portleak-ext -p portleak-ext-host --target $target $cargo_profile"
# shellcheck disable=SC2086
cargo build --locked -q -p portleak-ext -p portleak-ext-host --target "$target" $cargo_profile \
    || fail "the Windows build of portleak.dll and its test host"

scenarios=
[ -d tests/scenarios ] && scenarios="--scenarios tests/scenarios"

echo "== $out/portleak-ext-host.exe under Wine"
# The runner builds the Wine prefix and the bcryptprimitives stub on first use.
# shellcheck disable=SC2086
exec ext/tools/wine-run.sh "$out/portleak-ext-host.exe" "$out/portleak.dll" $scenarios $host_args
