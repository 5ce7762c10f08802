#!/usr/bin/env bash
# GPU benchmarks, gym vs the Python stack, both sides in one run on the same
# GPU (BENCHMARKS.md "GPU"). Run on the GPU machine from the repo root with
# dist/gym-cuda (scripts/build_cuda.sh) and, for TRL, its wheels installed
# (PYTHONPATH). Each line of output is one JSON result; peak GPU memory is
# also sampled from nvidia-smi (whole device, 50 ms) around each command.
#
#   scripts/bench_gpu.sh gen  qwen2.5-0.5b     # generation tokens/s vs transformers
#   scripts/bench_gpu.sh grpo qwen2.5-0.5b     # GRPO step vs TRL (GC_OFF=1: also without recomputation)
#   scripts/bench_gpu.sh sampling              # device sampling vs the CPU host sampler on a fixture
#                                              # (greedy tokens, log-probs of the same tokens)
#   scripts/bench_gpu.sh toy-cpu               # GRPO step on the CPU, toy config, vs TRL
#                                              # (GYM=target/release/gym: a CPU-only build will do;
#                                              #  SIDE=gym|trl: one side only; STEPS: gym's steps)
set -uo pipefail
cd "$(dirname "$0")/.."
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
what=${1:?gen|grpo|toy-cpu}
shape=${2:-qwen2.5-0.5b}
P=${PROMPT_LEN:-128} N=${NEW_TOKENS:-256} G=${GROUP:-8} R=${LORA_R:-16} MB=${MICRO_BATCH:-0} REPS=${REPS:-3}

# Runs "$@" while sampling used GPU memory; prints the command's JSON line
# with "nvsmi_peak_mib" added.
sampled() {
  local log
  log=$(mktemp)
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 50 >"$log" 2>/dev/null &
  local smi=$!
  local out
  out=$("$@" 2>"$log.err")
  local rc=$?
  kill "$smi" 2>/dev/null
  wait "$smi" 2>/dev/null
  local peak
  peak=$(sort -n "$log" | tail -1)
  if [ $rc -ne 0 ]; then
    echo "{\"error\": \"$1 exited $rc\"}"
    grep -v '^ *[0-9]*: \|^Stack backtrace\|^ *at ' "$log.err" | tail -20 >&2
    return $rc
  fi
  echo "$out" | tail -1 | python3 -c "import json,sys; d=json.loads(sys.stdin.read()); d['nvsmi_peak_mib']=int('${peak:-0}'); print(json.dumps(d))"
}

case $what in
  gen)
    sampled dist/gym-cuda bench model --what gen --shape "$shape" --device cuda --prompt-len "$P" --new-tokens "$N" --group "$G" --reps "$REPS" --bandwidth-gbs "${BANDWIDTH_GBS:-$(nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200 && echo 4800 || echo 3350)}"
    sampled python3 models/benches/hf_generate_gpu.py --shape "$shape" --prompt-len "$P" --new-tokens "$N" --group "$G" --reps "$REPS"
    ;;
  grpo)
    # GC=false measures gym without per-layer recomputation as well.
    for gc in true ${GC_OFF:+false}; do
      sampled dist/gym-cuda bench model --what grpo --shape "$shape" --device cuda --prompt-len "$P" --new-tokens "$N" \
        --group "$G" --lora-r "$R" --micro-batch "$MB" --reps "$REPS" --gradient-checkpointing "$gc"
    done
    sampled python3 trainers/benches/trl_grpo.py --shape "$shape" --device cuda --prompt-len "$P" --new-tokens "$N" \
      --group "$G" --lora-r "$R" --micro-batch "$MB" --steps "$REPS"
    ;;
  sampling)
    # The same greedy episodes of a fixture model on the GPU (bf16, device sampling) and the CPU (f32, host
    # sampling): how many tokens agree, and the log-prob gap on the agreeing prefix.
    out=$(mktemp -d)
    for d in cpu cuda; do
      dist/gym-cuda run math --policy policies/tests/fixtures/tiny-qwen2 --device $d --episodes 16 --temperature 0 \
        --max-new-tokens 32 --json --out "$out/$d.jsonl" >/dev/null
    done
    python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
a = [json.loads(l) for l in open(f"{out}/cpu.jsonl")]
b = [json.loads(l) for l in open(f"{out}/cuda.jsonl")]
same = total = 0
gap = 0.0
for ea, eb in zip(a, b):
    ta, tb = ea["steps"][0]["token_ids"], eb["steps"][0]["token_ids"]
    la, lb = ea["steps"][0]["logprobs"], eb["steps"][0]["logprobs"]
    k = 0
    while k < min(len(ta), len(tb)) and ta[k] == tb[k]:
        gap = max(gap, abs(la[k] - lb[k])); k += 1
    same += k; total += len(ta)
print(json.dumps({"check": "sampling", "greedy_tokens_agreeing_prefix": same, "greedy_tokens": total,
                  "max_logprob_gap_on_agreeing_prefix": gap}))
PY
    ;;
  toy-cpu)
    # SIDE=gym|trl|both (default both).
    out=$(mktemp -d)
    [ "${SIDE:-both}" = trl ] || python3 - "$out" <<'PY'
import json, os, resource, statistics, subprocess, sys
out = sys.argv[1]
subprocess.run([os.environ.get("GYM", "dist/gym-cuda"), "train", "toy:count_a", "--device", "cpu", "--config", "trainers/configs/toy_l5.toml",
                "--max-steps", os.environ.get("STEPS", "7"), "--output-dir", out, "--quiet"], check=True)
ls = [json.loads(l) for l in open(f"{out}/metrics.jsonl")]
t = [l["step_time"] for l in ls[1:]]
print(json.dumps({"side": "gym", "shape": "toy", "device": "cpu", "rayon_threads": os.environ.get("RAYON_NUM_THREADS", "default"),
                  "heap_tuning": "GLIBC_TUNABLES" not in os.environ, "step_seconds": statistics.median(t), "steps": t,
                  "rewards": [l["reward"] for l in ls],
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
PY
    [ "${SIDE:-both}" = gym ] || python3 trainers/benches/trl_grpo.py --shape toy --device cpu --steps 6
    ;;
  *) echo "unknown benchmark $what (gen, grpo, toy-cpu)" >&2; exit 2 ;;
esac
