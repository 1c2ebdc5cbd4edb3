#!/usr/bin/env bash
# Build an mmcv 2.1.0 wheel with its CPU ops against the torch installed in PYTHON's environment.
#
#   tools/build_mmcv_wheel.sh PYTHON OUT_DIR [SDIST]
#
# PYTHON   interpreter of the environment that holds torch (the build uses --no-build-isolation)
# OUT_DIR  where the wheel is written (created if needed)
# SDIST    mmcv-2.1.0.tar.gz to build from; downloaded from PyPI when not given
#
# mmcv 2.1.0's setup.py hard-codes -std=c++17. Newer torch headers refuse anything older than C++20
# (torch 2.14's ATen.h: "#error C++20 or later ..."), older ones (torch 2.1) are fine with C++17. The
# standard is read from the installed torch's own ATen.h, not guessed from its version string.
# Paths may be relative to the caller's directory: they are resolved before the build changes directory.
set -euo pipefail

[[ $# -ge 2 && $# -le 3 ]] || { echo "usage: $0 PYTHON OUT_DIR [SDIST]" >&2; exit 2; }
say() { echo "[build_mmcv] $*"; }
abspath() { [[ "$1" == /* ]] && echo "$1" || echo "$PWD/$1"; }

PY="$1"
[[ "$PY" == */* ]] && PY="$(abspath "$PY")"
OUT="$(abspath "$2")"
SDIST="${3:+$(abspath "$3")}"

# The C++ standard this torch requires of extensions (the newest its headers ask for).
cxx_std() {
    local include
    include="$("$PY" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "include"))')"
    if grep -qs 'C++20 or later' "$include/ATen/ATen.h"; then echo c++20; else echo c++17; fi
}

std="$(cxx_std)"
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
if [[ -z "$SDIST" ]]; then
    say "downloading the mmcv 2.1.0 source distribution from PyPI"
    # without build isolation: its metadata step needs pkg_resources, i.e. the environment's setuptools<81
    "$PY" -m pip download -q --no-deps --no-build-isolation --no-binary :all: mmcv==2.1.0 -d "$build"
    SDIST="$build/mmcv-2.1.0.tar.gz"
fi
tar -xzf "$SDIST" -C "$build"
src="$build/mmcv-2.1.0"
[[ -f "$src/setup.py" ]] || { echo "[build_mmcv] error: $SDIST holds no mmcv-2.1.0/setup.py" >&2; exit 1; }
if [[ "$std" != c++17 ]]; then
    say "torch's headers require $std: replacing mmcv's -std=c++17"
    sed -i "s/-std=c++17/-std=$std/g" "$src/setup.py"
fi
mkdir -p "$OUT"
say "building (MAX_JOBS=${MAX_JOBS:-$(nproc)}) into $OUT"
(cd "$src" && MMCV_WITH_OPS=1 FORCE_CUDA="${FORCE_CUDA:-0}" MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
    "$PY" -m pip wheel -q --no-build-isolation --no-deps . -w "$OUT")
ls "$OUT"/mmcv-2.1.0-*.whl
