#!/usr/bin/env bash
# GPU checks, run on the GPU machine from the repository root after
# `scripts/build_cuda.sh --tests` (here) has built dist/gym-cuda and
# dist/gpu-tests/ (carried there; no Rust toolchain needed):
#   1. tiny fixtures on CUDA vs CPU: logits (f32 1e-3, bf16 tolerance), greedy tokens;
#   2. GRPO on count_a on CUDA vs CPU (first steps agree; reward ≥ 0.9 by step 40);
#   3. the gym binary end to end on the GPU: `gym run math` with a fixture model
#      and `gym train toy:count_a --device cuda`.
# Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export GYM_REPO=$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
for t in dist/gpu-tests/*; do
  echo "== $t"
  "$t" --test-threads 1 --nocapture
done
echo "== gym run math on cuda"
dist/gym-cuda run math --policy policies/tests/fixtures/tiny-qwen2 --device cuda --episodes 4 --max-new-tokens 16
echo "== gym train toy:count_a on cuda"
out=$(mktemp -d)
dist/gym-cuda train toy:count_a --device cuda --config trainers/configs/toy_l5.toml --max-steps 5 \
  --output-dir "$out" --quiet
test "$(wc -l <"$out/metrics.jsonl")" = 5
test -f "$out/adapter/adapter_model.safetensors"
echo "gpu_test.sh: all GPU checks passed"
