#!/usr/bin/env bash
# timm's own model test suite (tests/test_models.py of the installed timm release) on mmfocal's nine timm models.
#
#   bash tools/dev/timm_suite.sh [PYTEST_ARGS...]      PY=.venv/bin/python by default
#
# The test file comes from timm's source distribution on PyPI, for exactly the installed version, and is kept in
# .cache/timm-suite/<version>/ (downloaded once; never committed: it is timm's code). It runs unmodified; the
# plugin tests/timm_suite/timm_suite_plugin.py narrows timm's model lists to ours and feeds the pretrained tests
# local official-layout files. TorchScript tests are deselected by default (-m "not torchscript" and -k filters
# below): TorchScript is deprecated in torch 2.14; torch.export is mmfocal's supported path (docs/deployment.md).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PY:-$REPO/.venv/bin/python}"
version="$("$PY" -c 'import timm; print(timm.__version__)')"
dest="$REPO/.cache/timm-suite/$version"
if [[ ! -f "$dest/test_models.py" ]]; then
    tmp="$(mktemp -d)"
    "$PY" -m pip download --quiet --no-deps --no-binary :all: "timm==$version" -d "$tmp"
    mkdir -p "$dest"
    tar -xzf "$tmp/timm-$version.tar.gz" -C "$tmp" "timm-$version/tests/test_models.py"
    mv "$tmp/timm-$version/tests/test_models.py" "$dest/test_models.py"
    rm -rf "$tmp"
fi
cd "$REPO"
PYTHONPATH="$REPO/tests/timm_suite${PYTHONPATH:+:$PYTHONPATH}" exec "$PY" -m pytest "$dest/test_models.py" \
    -p timm_suite_plugin -p no:cacheprovider -o addopts="" -q -W ignore::pytest.PytestUnknownMarkWarning \
    -k "not torchscript" "$@"
