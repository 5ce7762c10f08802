#!/usr/bin/env bash
# Builds the `gym` binary with the `cuda` feature on a machine without a GPU
# (CUDA 13.0 toolchain from PyPI wheels: scripts/cuda_toolchain.sh), strips
# it and writes it to DEST (default dist/gym-cuda), plus the GPU test
# binaries when `--tests` is given (dist/gpu-tests/).
#
#   scripts/build_cuda.sh [--tests] [DEST]
#
# On the GPU machine (driver 580 = CUDA 13.0; no Rust toolchain needed):
#   export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:$LD_LIBRARY_PATH
#   dist/gym-cuda run math --policy <model> --device cuda
# and scripts/gpu_test.sh runs the GPU checks there.
set -euo pipefail
cd "$(dirname "$0")/.."
tests=0
if [ "${1:-}" = "--tests" ]; then tests=1; shift; fi
dest=${1:-dist/gym-cuda}
cargo fetch --locked >/dev/null
# shellcheck source=scripts/cuda_toolchain.sh
source scripts/cuda_toolchain.sh "${GYM_CUDA_DIR:-$HOME/.cache/gym-cuda13}"
export CUDARC_CUDA_VERSION=13000
cargo build --release --locked -p gym --features cuda
mkdir -p "$(dirname "$dest")"
target=${CARGO_TARGET_DIR:-target}
strip -o "$dest" "$target/release/gym"
echo "built $dest ($(du -h "$dest" | cut -f1))"
if [ "$tests" = 1 ]; then
  mkdir -p dist/gpu-tests
  for spec in "policies cuda" "trainers cuda"; do
    set -- $spec
    exe=$(cargo test --release --locked -p "$1" --features cuda --test "$2" --no-run --message-format=json 2>/dev/null \
      | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["kind"]==["test"]: print(m["executable"])' \
      | tail -1)
    strip -o "dist/gpu-tests/$1-$2" "$exe"
    echo "built dist/gpu-tests/$1-$2"
  done
fi
