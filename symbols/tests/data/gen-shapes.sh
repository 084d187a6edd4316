#!/bin/sh
# Rebuilds shapes.sys + shapes.pdb from shapes.c and shapes_cpp.cpp (clang/lld 14 on Debian 12). /brepro makes the
# output byte-for-byte reproducible; the tests read the committed files.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
clang --target=x86_64-pc-windows-msvc -c -gcodeview -g -fno-eliminate-unused-debug-types -O1 \
    -ffreestanding -fno-stack-protector shapes.c -o "$tmp/shapes.obj"
clang --target=x86_64-pc-windows-msvc -c -gcodeview -g -O1 -ffreestanding -fno-stack-protector \
    shapes_cpp.cpp -o "$tmp/shapes_cpp.obj"
lld-link /nologo /machine:x64 /driver /subsystem:native /nodefaultlib /debug /brepro \
    /entry:ShapeEntry /base:0x140000000 /pdb:shapes.pdb /pdbaltpath:shapes.pdb /out:shapes.sys \
    "$tmp/shapes.obj" "$tmp/shapes_cpp.obj"
