#!/usr/bin/env bash
# Fill .cuda_check_deps/ with what tools/dev/cuda_check.py needs beyond torch, torchvision, timm, numpy and
# opencv, as pure Python: mmengine 0.10.7 and its small dependencies (wheels from PyPI) and mmcv 2.1.0 without
# its compiled ops (built here from the PyPI source, ~15 s). Run it where there is network, then carry the
# folder to the GPU machine (it is git-ignored; a few MiB). Needs a Python with pip, setuptools<81 and torch.
#
#   bash tools/dev/fetch_cuda_check_deps.sh [PYTHON]
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${1:-$REPO/.venv/bin/python}"
OUT="$REPO/.cuda_check_deps"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$PY" -m pip download -q --no-deps -d "$work/wheels" mmengine==0.10.7 addict yapf termcolor rich markdown-it-py \
    mdurl pygments platformdirs
"$PY" -m pip download -q --no-deps --no-build-isolation --no-binary :all: mmcv==2.1.0 -d "$work"
tar -xzf "$work/mmcv-2.1.0.tar.gz" -C "$work"
(cd "$work/mmcv-2.1.0" && MMCV_WITH_OPS=0 "$PY" -m pip wheel -q --no-deps --no-build-isolation . -w "$work/wheels")
rm -rf "$OUT"
mkdir -p "$OUT"
for whl in "$work"/wheels/*.whl; do
    "$PY" -m zipfile -e "$whl" "$OUT"
done
rm -rf "$OUT"/*.dist-info
echo "[fetch_cuda_check_deps] $(du -sh "$OUT" | cut -f1) in $OUT: $(ls "$work"/wheels | xargs)"
