#!/usr/bin/env bash
# Create (or update) the project's virtual environment with the exact stack mmfocal supports.
#
# Idempotent: a second run only checks what is there (a few seconds).
#
#   MMFOCAL_WHEEL_DIR=DIR   take mmcv 2.1.0 (with ops) from a directory of prebuilt wheels
#   VENV=PATH               where the environment lives (default: .venv in the repository)
#   PYTHON=python3.11       interpreter that creates the venv
#
# Without a wheel directory mmcv 2.1.0 is built from the PyPI source distribution with the
# C++20 fix torch 2.14 needs: about an hour on 2 cores (33 min measured with other work running).
# The built wheel is kept in ~/.cache/mmfocal/wheels so the build happens once per machine.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$REPO/.venv}"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
WHEEL_CACHE="${MMFOCAL_WHEEL_CACHE:-$HOME/.cache/mmfocal/wheels}"
STAMP="$VENV/.mmfocal-setup"

say() { echo "[setup_env] $*"; }

# A stamp holding the hash of everything that decides the environment makes re-runs instant.
want_hash="$(cat "$REPO/requirements.txt" "$REPO/requirements-test.txt" "$REPO/setup.py" "$0" | sha256sum | cut -c1-16)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want_hash" && -x "$VENV/bin/python" ]]; then
    say "environment up to date ($VENV)"
    exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating virtual environment $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check)
pyver="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
[[ "$pyver" == "3.11" ]] || say "warning: Python $pyver; the stack is tested on Python 3.11"

# torch first: anything that asks for torch without a pin could otherwise pull another build.
say "installing torch 2.14.1 + torchvision 0.29.1"
"${PIP[@]}" -q torch==2.14.1 torchvision==0.29.1

has_mmcv_ops() { "$PY" -c 'import mmcv, mmcv.ops; assert mmcv.__version__ == "2.1.0"' >/dev/null 2>&1; }
# installed with its compiled extension (importing it may still wait for mmcv's dependencies)
has_mmcv_ext() {
    "$PY" -m pip show mmcv 2>/dev/null | grep -q '^Version: 2.1.0$' &&
        ls "$VENV"/lib/python*/site-packages/mmcv/_ext*.so >/dev/null 2>&1
}

find_wheel() {  # prints the first mmcv 2.1.0 wheel found in the given directories
    local d
    for d in "$@"; do
        [[ -n "$d" && -d "$d" ]] || continue
        ls "$d"/mmcv-2.1.0-*.whl 2>/dev/null | head -n1 && return 0
    done
    return 1
}

if has_mmcv_ext; then
    say "mmcv 2.1.0 with ops already installed"
elif whl="$(find_wheel "${MMFOCAL_WHEEL_DIR:-}" "$WHEEL_CACHE")"; then
    say "installing mmcv 2.1.0 from $whl"
    "${PIP[@]}" -q --no-deps "$whl"
else
    [[ -n "${MMFOCAL_WHEEL_DIR:-}" ]] && say "no mmcv-2.1.0 wheel in MMFOCAL_WHEEL_DIR=$MMFOCAL_WHEEL_DIR"
    say "building mmcv 2.1.0 with CPU ops from source: this takes about an hour on 2 cores."
    say "(set MMFOCAL_WHEEL_DIR to a directory holding a prebuilt mmcv-2.1.0 wheel to skip this)"
    "${PIP[@]}" -q "setuptools>=77,<81" wheel ninja
    build="$(mktemp -d)"
    trap 'rm -rf "$build"' EXIT
    "$PY" -m pip download -q --no-deps --no-binary :all: mmcv==2.1.0 -d "$build"
    tar -xzf "$build"/mmcv-2.1.0.tar.gz -C "$build"
    # torch 2.14's headers refuse anything older than C++20; mmcv 2.1.0 hard-codes C++17.
    sed -i 's/-std=c++17/-std=c++20/g' "$build/mmcv-2.1.0/setup.py"
    mkdir -p "$WHEEL_CACHE"
    (cd "$build/mmcv-2.1.0" && MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
        "$PY" -m pip wheel -v --no-build-isolation --no-deps . -w "$WHEEL_CACHE")
    "${PIP[@]}" -q --no-deps "$(find_wheel "$WHEEL_CACHE")"
fi

# mmcv's own dependencies (mmengine, addict, yapf, ...) come with the requirements, so check its ops after.
say "installing the OpenMMLab stack, test tools and mmfocal (editable)"
"${PIP[@]}" -q -r "$REPO/requirements.txt" -r "$REPO/requirements-test.txt"
"${PIP[@]}" -q --no-deps -e "$REPO"
has_mmcv_ops || { say "error: mmcv.ops does not import after installation:"; "$PY" -c 'import mmcv.ops'; exit 1; }
"$PY" -c 'import mmfocal, mmcv.ops, mmdet, mmseg; print("[setup_env] ok: mmfocal", mmfocal.__version__)'
echo "$want_hash" > "$STAMP"
