#!/usr/bin/env bash
# CUDA 13.0 build toolchain for gym's `cuda` feature, on a machine with no GPU
# and no CUDA install: NVIDIA's PyPI wheels (pinned to 13.0 — newer nvvm
# emits PTX ISA 9.5, which driver 580 / CUDA 13.0 rejects) plus a link-time
# stub of the driver library (libcuda.so is part of the driver, not of any
# wheel; at run time the real one is loaded by its soname).
#
#   source scripts/cuda_toolchain.sh [DIR]     # DIR default: $HOME/.cache/gym-cuda13
#
# Exports PATH, CUDA_ROOT/CUDA_PATH, CUDA_COMPUTE_CAP (default 90 = H100/H200),
# LIBRARY_PATH, CPATH and RUSTFLAGS for `cargo build --features cuda`.
# scripts/build_cuda.sh uses it; see the README ("GPU").
gym_cuda_dir=${1:-$HOME/.cache/gym-cuda13}
gym_cuda_root=$gym_cuda_dir/nvidia/cu13
if [ ! -x "$gym_cuda_root/bin/nvcc" ] || [ ! -e "$gym_cuda_root/lib/libcuda.so" ]; then
  # Installs in a subshell so that a caller's shell options stay as they were.
  (
  set -euo pipefail
  mkdir -p "$gym_cuda_dir/whl"
  python3 -m pip download -q --no-deps -d "$gym_cuda_dir/whl" \
    nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88 \
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cuda-nvrtc==13.0.88 \
    nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35
  for w in "$gym_cuda_dir"/whl/*.whl; do python3 -m zipfile -e "$w" "$gym_cuda_dir"; done
  chmod +x "$gym_cuda_root"/bin/* "$gym_cuda_root"/nvvm/bin/* 2>/dev/null || true
  (
    cd "$gym_cuda_root/lib"
    for l in cublas cublasLt cudart nvrtc; do ln -sf "lib$l.so.13" "lib$l.so"; done
    ln -sf libcurand.so.10 libcurand.so
  )
  # The driver API's symbols, as cudarc binds them, each as a dummy function.
  cudarc_sys=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-*/src/driver/sys 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$cudarc_sys" ]; then
    echo "cuda_toolchain.sh: run 'cargo fetch' first (cudarc's sources list the driver symbols)" >&2
    exit 1
  fi
  grep -oE '^\s+fn (cu[A-Za-z0-9_]+)\(' "$cudarc_sys/mod.rs" | sed -E 's/^\s+fn ([A-Za-z0-9_]+)\(/\1/' | sort -u \
    | awk '{print "int " $1 "(void){return 999;}"}' >"$gym_cuda_dir/libcuda_stub.c"
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$gym_cuda_root/lib/libcuda.so" "$gym_cuda_dir/libcuda_stub.c"
  ) || { echo "cuda_toolchain.sh: toolchain setup failed" >&2; return 1 2>/dev/null || exit 1; }
fi
export PATH=$gym_cuda_root/bin:$PATH CUDA_ROOT=$gym_cuda_root CUDA_PATH=$gym_cuda_root
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
export LIBRARY_PATH=$gym_cuda_root/lib${LIBRARY_PATH:+:$LIBRARY_PATH} CPATH=$gym_cuda_root/include${CPATH:+:$CPATH}
export RUSTFLAGS="-L $gym_cuda_root/lib${RUSTFLAGS:+ $RUSTFLAGS}"
