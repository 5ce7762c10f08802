#!/usr/bin/env bash
# Trains gym-tiny from scratch with gym alone and installs it as the bundled
# `--policy gym-tiny` (policies/assets/gym-tiny/model.safetensors):
#   1. SFT of a randomly initialised model on procedurally generated Rhai 2048
#      programs (`--sft programs:2048-strategy --from-scratch`);
#   2. GRPO (LoRA, merged afterwards) on `2048-strategy`;
#   3. held-out evaluation (env seeds EVAL_SEED.., never used in training:
#      SFT uses seeds 0..SFT_EXAMPLES, GRPO draws hashed seeds) of the SFT start
#      and the GRPO end with the same sampling settings, with the paired
#      difference per episode and its 95 % bootstrap interval
#      (scripts/gym_tiny_curves.py).
# Usage: scripts/train_gym_tiny.sh            (from a clean checkout; CPU only;
#        25–35 min on 2 cores: SFT 7–18 min, GRPO 80 × 7 s, evals 1 min)
# Env:   OUT (runs/gym-tiny), PROFILE (release|dev, default release), INSTALL
#        (1 = copy the result into policies/assets/gym-tiny), THREADS (rollout
#        and candle threads, default: cores, at most 8), and the sizes below.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gym-tiny}
PROFILE=${PROFILE:-release}
INSTALL=${INSTALL:-1}
SFT_EXAMPLES=${SFT_EXAMPLES:-12800}
SFT_STEPS=${SFT_STEPS:-800}
GRPO_STEPS=${GRPO_STEPS:-80}
GRPO_LR=${GRPO_LR:-2e-3}
GRPO_SCHEDULE=${GRPO_SCHEDULE:-cosine}
SKIP_SFT=${SKIP_SFT:-0}   # 1 = reuse $OUT/sft and $OUT/eval-sft.json from an earlier run
EVAL_SEED=${EVAL_SEED:-100000}
EVAL_EPISODES=${EVAL_EPISODES:-256}
SEED=${SEED:-1}
THREADS=${THREADS:-$(n=$(nproc); echo $((n < 8 ? n : 8)))}
export RAYON_NUM_THREADS=$THREADS   # a 0.6 M-parameter model gains nothing from more

cargo build --profile "$PROFILE" -p gym
dir=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
GYM="${CARGO_TARGET_DIR:-target}/$dir/gym"
mkdir -p "$OUT"
now() { date +%s.%N; }

t0=$(now)
if [ "$SKIP_SFT" != 1 ]; then
"$GYM" train --sft programs:2048-strategy --model policies/assets/gym-tiny --from-scratch --device cpu \
  --sft-examples "$SFT_EXAMPLES" --max-steps "$SFT_STEPS" --per-device-train-batch-size 16 \
  --learning-rate 2e-3 --seed "$SEED" --output-dir "$OUT/sft" --quiet
t1=$(now)
"$GYM" run 2048-strategy --policy "$OUT/sft/model" --episodes "$EVAL_EPISODES" --seed "$EVAL_SEED" \
  --threads "$THREADS" --out "$OUT/eval-sft.jsonl" --json > "$OUT/eval-sft.json"
else
t1=$t0
fi
t2=$(now)
"$GYM" train 2048-strategy --model "$OUT/sft/model" --device cpu --rollout-threads "$THREADS" --opt games=2 \
  --max-steps "$GRPO_STEPS" --num-generations 8 --per-device-train-batch-size 32 --set gradient_accumulation_steps=2 \
  --max-completion-length 160 --learning-rate "$GRPO_LR" --set lr_scheduler_type="$GRPO_SCHEDULE" \
  --set warmup_steps=2 --temperature 1.0 --beta 0 --seed "$SEED" --set lora_r=16 \
  --set lora_alpha=32 --set save_steps=0 --save-merged --output-dir "$OUT/grpo" --quiet
t3=$(now)
"$GYM" run 2048-strategy --policy "$OUT/grpo/model" --episodes "$EVAL_EPISODES" --seed "$EVAL_SEED" \
  --threads "$THREADS" --out "$OUT/eval-grpo.jsonl" --json > "$OUT/eval-grpo.json"
t4=$(now)

python3 - "$OUT" "$t0" "$t1" "$t2" "$t3" "$t4" <<'PY' | tee "$OUT/summary.txt"
import json, sys
out, t = sys.argv[1], [float(x) for x in sys.argv[2:]]
sft = json.load(open(f"{out}/eval-sft.json"))["summary"]
grpo = json.load(open(f"{out}/eval-grpo.json"))["summary"]
print(f"SFT  wall {t[1]-t[0]:.0f} s   eval {t[2]-t[1]:.0f} s")
print(f"GRPO wall {t[3]-t[2]:.0f} s   eval {t[4]-t[3]:.0f} s")
print(f"held-out mean reward: SFT {sft['mean_reward']:.3f}  GRPO {grpo['mean_reward']:.3f}")
print(f"held-out success rate: SFT {sft['success_rate']:.3f}  GRPO {grpo['success_rate']:.3f}")
PY
python3 scripts/gym_tiny_curves.py "$OUT" | tee -a "$OUT/summary.txt"
if [ "$INSTALL" = 1 ]; then
  # Ship the GRPO model unless it scored below its SFT start on the held-out seeds.
  best=$(python3 -c "import json,sys; r=lambda n: json.load(open(f'$OUT/eval-{n}.json'))['summary']['mean_reward']; \
print('grpo' if r('grpo') >= r('sft') else 'sft')")
  cp "$OUT/$best/model/model.safetensors" policies/assets/gym-tiny/model.safetensors
  echo "installed $OUT/$best/model/model.safetensors as gym-tiny"
fi
