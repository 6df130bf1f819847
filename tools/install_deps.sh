#!/usr/bin/env bash
# Installs mmext's stack into the virtual environment given as $1 (default .venv).
#
# Why a script and not one `pip install -r`: three packages cannot be installed the plain way
# with torch 2.14 on Python 3.11 (see README, "How the install works"):
#   * mmcv 2.1.0 has no wheels on PyPI; its sdist must be compiled against the installed torch,
#     with -std=c++20 (torch 2.14's headers refuse C++17) and without build isolation.
#   * mmpose 1.3.2 depends on chumpy, which does not build; mmpose goes in with --no-deps and its
#     real runtime dependencies come from requirements.txt.
#   * torch's install upgrades setuptools to a release without pkg_resources, which both mmcv's
#     setup.py and mmengine (at run time) import; setuptools is pinned again after torch.
# The compiled mmcv wheel is cached in $MMEXT_CACHE (default ~/.cache/mmext/wheels), keyed by the
# mmcv, torch and Python versions and the build flavour, so a second install takes seconds.
set -euo pipefail

VENV=${1:-.venv}
HERE=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3.11}
MMCV_VERSION=2.1.0
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
SETUPTOOLS_PIN="setuptools==80.9.0"
CACHE=${MMEXT_CACHE:-$HOME/.cache/mmext/wheels}

if [ ! -x "$VENV/bin/python" ]; then
    echo "[mmext] creating virtual environment $VENV"
    "$PY" -m venv "$VENV"
fi
VPY="$(cd "$VENV" && pwd)/bin/python"
pip_() { "$VPY" -m pip install --disable-pip-version-check "$@"; }

pip_ -q --upgrade "pip>=24" wheel
echo "[mmext] installing torch $TORCH_VERSION / torchvision $TORCHVISION_VERSION"
pip_ -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
# after torch: keep a setuptools that still ships pkg_resources
pip_ -q "$SETUPTOOLS_PIN"
echo "[mmext] installing the pinned requirements"
pip_ -q -r "$HERE/requirements.txt"

# cpu or cuda ops: CUDA ops when a GPU is visible, torch uses CUDA and nvcc exists (or
# FORCE_CUDA=1); the script says why, and what will not work when a GPU has no nvcc
FLAVOUR=$("$VPY" "$HERE/tools/mmcv_flavour.py")
HAVE=$("$VPY" -c "
import mmcv, mmcv.ops
from mmcv.ops import get_compiling_cuda_version as v
print(mmcv.__version__ + '-' + ('cpu' if v() == 'not available' else 'cuda'))" 2>/dev/null || true)
if [ "$HAVE" = "$MMCV_VERSION-$FLAVOUR" ]; then
    echo "[mmext] mmcv $MMCV_VERSION with $FLAVOUR ops already installed"
else
    PYV=$("$VPY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
    KEY="mmcv-$MMCV_VERSION-torch-$TORCH_VERSION-$PYV-$FLAVOUR"
    mkdir -p "$CACHE/$KEY"
    WHEEL=$(ls "$CACHE/$KEY"/mmcv-*.whl 2>/dev/null | head -n1 || true)
    if [ -z "$WHEEL" ]; then
        echo "[mmext] building mmcv $MMCV_VERSION with its C++ ops ($FLAVOUR) from source:"
        echo "[mmext]   PyPI has no mmcv $MMCV_VERSION wheel for torch $TORCH_VERSION/$PYV, so it is compiled once"
        echo "[mmext]   (10-16 minutes on 2 cores) and cached in $CACHE/$KEY"
        BUILD=$(mktemp -d)
        "$VPY" -m pip download -q --no-deps --no-binary :all: --no-build-isolation \
            "mmcv==$MMCV_VERSION" -d "$BUILD"
        tar -xzf "$BUILD"/mmcv-$MMCV_VERSION.tar.gz -C "$BUILD"
        SRC="$BUILD/mmcv-$MMCV_VERSION"
        # torch >= 2.6 headers need C++20 ("C++20 or later compatible compiler is required")
        sed -i 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
        FORCE=0
        [ "$FLAVOUR" = "cuda" ] && FORCE=1
        (cd "$SRC" && MMCV_WITH_OPS=1 FORCE_CUDA=$FORCE MAX_JOBS=${MAX_JOBS:-$(nproc)} \
            "$VPY" -m pip wheel --no-build-isolation --no-deps -w "$CACHE/$KEY" .)
        rm -rf "$BUILD"
        WHEEL=$(ls "$CACHE/$KEY"/mmcv-*.whl | head -n1)
    else
        echo "[mmext] using cached mmcv wheel $WHEEL"
    fi
    pip_ -q --no-deps --force-reinstall "$WHEEL"
fi

echo "[mmext] installing mmpose (without chumpy) and mmext"
pip_ -q --no-deps "mmpose==1.3.2"
pip_ -q --no-deps --no-build-isolation -e "$HERE"
"$VPY" -c "import mmcv.ops, mmdet, mmpose.models, xtcocotools, mmext; print('[mmext] stack OK: mmcv', mmcv.__version__, '| mmdet', mmdet.__version__, '| mmpose', mmpose.__version__)"
