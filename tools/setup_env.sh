#!/usr/bin/env bash
# Create (or update) the project's virtual environment with one of the stacks mmfocal supports.
#
# Idempotent: a second run only checks what is there (a few seconds).
#
#   MMFOCAL_STACK=NAME      torch2.14 (default): torch 2.14.1 + torchvision 0.29.1
#                           torch2.1: torch 2.1.2 + torchvision 0.16.2 + numpy<2 (what OpenMMLab ships mmcv wheels for)
#                           The pins are requirements/NAME.txt, applied as pip constraints to every install.
#   MMFOCAL_WHEEL_DIR=DIR   take mmcv 2.1.0 (with ops) from a directory of prebuilt wheels: DIR/NAME/ first,
#                           then DIR itself for the default stack (a wheel matches only the torch it was built for)
#   MMFOCAL_MMCV_SDIST=F    build from this mmcv-2.1.0.tar.gz instead of downloading it
#   VENV=PATH               where the environment lives (default: .venv in the repository; may be relative)
#   PYTHON=python3.11       interpreter that creates the venv
#   --dry-run               print what would be done and exit
#
# Without a wheel, mmcv 2.1.0 is built from the PyPI source distribution by tools/build_mmcv_wheel.sh
# (measured: 43 min wall beside other jobs for torch 2.14, 16 min for torch 2.1). The built wheel is kept in
# ~/.cache/mmfocal/wheels (default stack) or ~/.cache/mmfocal/wheels/NAME, so it is built once per machine.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DRY_RUN=0
[[ "${1:-}" == "--dry-run" ]] && DRY_RUN=1
STACK="${MMFOCAL_STACK:-torch2.14}"
DEFAULT_STACK=torch2.14
CONSTRAINTS="$REPO/requirements/$STACK.txt"
[[ -f "$CONSTRAINTS" ]] || {
    echo "[setup_env] error: unknown MMFOCAL_STACK=$STACK; choose one of: $(cd "$REPO/requirements" && ls *.txt | sed 's/\.txt$//' | xargs)" >&2
    exit 2
}
# Resolved now: the source build runs in another directory, where a relative path would point elsewhere.
VENV="${VENV:-$REPO/.venv}"
[[ "$VENV" == /* ]] || VENV="$PWD/$VENV"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
WHEEL_CACHE="${MMFOCAL_WHEEL_CACHE:-$HOME/.cache/mmfocal/wheels}"
[[ "$STACK" == "$DEFAULT_STACK" ]] || WHEEL_CACHE="$WHEEL_CACHE/$STACK"
STAMP="$VENV/.mmfocal-setup"
MMCV_STAMP="$VENV/.mmfocal-mmcv-stack"  # which stack the installed mmcv was built for
torch_pin="$(grep -E '^torch==' "$CONSTRAINTS" | cut -d= -f3)"

say() { echo "[setup_env] $*"; }

find_wheel() {  # prints the first mmcv 2.1.0 wheel found in the given directories
    local d
    for d in "$@"; do
        [[ -n "$d" && -d "$d" ]] || continue
        ls "$d"/mmcv-2.1.0-*.whl 2>/dev/null | head -n1 && return 0
    done
    return 1
}
wheel_dirs=()
if [[ -n "${MMFOCAL_WHEEL_DIR:-}" ]]; then
    wheel_dirs+=("$MMFOCAL_WHEEL_DIR/$STACK")
    [[ "$STACK" == "$DEFAULT_STACK" ]] && wheel_dirs+=("$MMFOCAL_WHEEL_DIR")
fi
wheel_dirs+=("$WHEEL_CACHE")

# installed for this stack, with its compiled extension (importing it may still wait for mmcv's dependencies)
# (pip's output is captured first: under pipefail, `pip show | grep -q` fails whenever grep exits before pip has
# written everything, which made the answer depend on timing)
has_mmcv_ext() {
    local info
    [[ -f "$MMCV_STAMP" && "$(cat "$MMCV_STAMP")" == "$STACK" ]] &&
        info="$("$VENV/bin/python" -m pip show mmcv 2>/dev/null)" && grep -q '^Version: 2.1.0$' <<<"$info" &&
        ls "$VENV"/lib/python*/site-packages/mmcv/_ext*.so >/dev/null 2>&1
}

if [[ $DRY_RUN == 1 ]]; then
    echo "stack: $STACK (torch $torch_pin, constraints $CONSTRAINTS)"
    echo "venv: $VENV"
    if [[ -x "$VENV/bin/python" ]] && has_mmcv_ext; then echo "mmcv: installed"
    elif whl="$(find_wheel "${wheel_dirs[@]}")"; then echo "mmcv: wheel $whl"
    else echo "mmcv: source build into $WHEEL_CACHE (from ${MMFOCAL_MMCV_SDIST:-PyPI})"
    fi
    exit 0
fi

# A stamp holding the hash of everything that decides the environment makes re-runs instant.
want_hash="$( (echo "$STACK"; cat "$REPO/requirements.txt" "$REPO/requirements-test.txt" "$CONSTRAINTS" \
    "$REPO/setup.py" "$REPO/tools/setup_env.sh" "$REPO/tools/build_mmcv_wheel.sh") | sha256sum | cut -c1-16)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want_hash" && -x "$VENV/bin/python" ]]; then
    say "environment up to date ($VENV, stack $STACK)"
    exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating virtual environment $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check -c "$CONSTRAINTS")
pyver="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
[[ "$pyver" == "3.11" ]] || say "warning: Python $pyver; the stacks are tested on Python 3.11"

# torch first: anything that asks for torch without a pin could otherwise pull another build.
say "stack $STACK: installing $(grep -vE '^(#|$)' "$CONSTRAINTS" | xargs)"
"${PIP[@]}" -q $(grep -E '^(torch|torchvision)==' "$CONSTRAINTS")

has_mmcv_ops() { "$PY" -c 'import mmcv, mmcv.ops; assert mmcv.__version__ == "2.1.0"' >/dev/null 2>&1; }

if has_mmcv_ext; then
    say "mmcv 2.1.0 with ops already installed for $STACK"
else
    if ! whl="$(find_wheel "${wheel_dirs[@]}")"; then
        [[ -n "${MMFOCAL_WHEEL_DIR:-}" ]] && say "no mmcv-2.1.0 wheel for $STACK in MMFOCAL_WHEEL_DIR=$MMFOCAL_WHEEL_DIR"
        say "building mmcv 2.1.0 with CPU ops from source against torch $torch_pin: 15-45 minutes on 2 cores."
        say "(set MMFOCAL_WHEEL_DIR to a directory holding a prebuilt mmcv-2.1.0 wheel to skip this)"
        "${PIP[@]}" -q "setuptools>=77,<81" wheel ninja
        whl="$(bash "$REPO/tools/build_mmcv_wheel.sh" "$PY" "$WHEEL_CACHE" ${MMFOCAL_MMCV_SDIST:+"$MMFOCAL_MMCV_SDIST"} | tail -n1)"
    fi
    say "installing mmcv 2.1.0 from $whl"
    "${PIP[@]}" -q --no-deps --force-reinstall "$whl"
    echo "$STACK" > "$MMCV_STAMP"
fi

# mmcv's own dependencies (mmengine, addict, yapf, ...) come with the requirements, so check its ops after.
say "installing the OpenMMLab stack, test tools and mmfocal (editable)"
"${PIP[@]}" -q -r "$REPO/requirements.txt" -r "$REPO/requirements-test.txt"
# mim without openmim's opendatalab chain, which would downgrade setuptools (its dependencies are in requirements-test)
"${PIP[@]}" -q --no-deps openmim==0.3.9
"${PIP[@]}" -q --no-deps --no-build-isolation -e "$REPO"  # the venv's setuptools (pinned <81), no download
if ! has_mmcv_ops; then
    say "error: mmcv.ops does not import (a wheel built for another torch than $torch_pin?):"
    "$PY" -c 'import mmcv.ops' || true
    rm -f "$MMCV_STAMP"
    exit 1
fi
"$PY" -c 'import torch, mmfocal, mmcv.ops, mmdet, mmseg; print("[setup_env] ok: mmfocal", mmfocal.__version__, "on torch", torch.__version__)'
echo "$want_hash" > "$STAMP"
