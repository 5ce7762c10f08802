"""Prints the gym-tiny training curves as Markdown tables (BENCHMARKS.md).

Usage: python3 scripts/gym_tiny_curves.py [OUT]   (OUT = runs/gym-tiny)
SFT: loss / mean_token_accuracy at 8 or more points. GRPO: mean reward (and the
`outcome` term) over the generations of each 5-step (10-step past 40 steps)
window, on training seeds.
Held-out: the `gym run` summaries written by scripts/train_gym_tiny.sh, and the
paired per-episode difference GRPO − SFT with a 95 % bootstrap interval.
"""
import json, sys

out = sys.argv[1] if len(sys.argv) > 1 else "runs/gym-tiny"
load = lambda p: [json.loads(l) for l in open(p) if l.strip()]
sft = load(f"{out}/sft/metrics.jsonl")
print("| SFT step | loss | mean_token_accuracy |\n|---|---|---|")
every = max(25, len(sft) // 8 // 25 * 25)
for m in sft:
    s = int(m["step"])
    if s == 1 or s % every == 0 or s == len(sft):
        print(f"| {s} | {m['loss']:.3f} | {m['mean_token_accuracy']:.3f} |")
grpo = load(f"{out}/grpo/metrics.jsonl")
print("\n| GRPO steps | mean reward (training seeds) | `outcome` | `program` |\n|---|---|---|---|")
window = 5 if len(grpo) <= 40 else 10
for i in range(0, len(grpo), window):
    w = grpo[i:i + window]
    f = lambda k: sum(m.get(k, 0.0) for m in w) / len(w)
    print(f"| {int(w[0]['step'])}–{int(w[-1]['step'])} | {f('reward'):.3f} | {f('rewards/outcome/mean'):.3f} "
          f"| {f('rewards/program/mean'):.3f} |")
print("\n| held-out (same seeds, same sampling) | mean reward | median | success rate |\n|---|---|---|---|")
for name in ["sft", "grpo"]:
    try:
        s = json.load(open(f"{out}/eval-{name}.json"))["summary"]
    except FileNotFoundError:
        continue
    print(f"| {name.upper()} model | {s['mean_reward']:.3f} | {s['median_reward']:.3f} | {s['success_rate']:.3f} |")

# Paired comparison: the same env seeds and the same sampling seeds for both
# models, so each episode's difference removes the boards' own difficulty.
def episode_rewards(path):
    out = {}
    for line in open(path):
        e = json.loads(line)
        out[(e["seed"], e["sample"])] = sum(s.get("reward", 0.0) for s in e["steps"])
    return out

try:
    a, b = episode_rewards(f"{out}/eval-sft.jsonl"), episode_rewards(f"{out}/eval-grpo.jsonl")
except FileNotFoundError:
    sys.exit(0)
keys = sorted(set(a) & set(b))
if keys:
    import random
    d = [b[k] - a[k] for k in keys]
    rng = random.Random(0)
    boot = sorted(sum(rng.choice(d) for _ in d) / len(d) for _ in range(10000))
    print(f"\nGRPO − SFT, paired over {len(d)} held-out episodes: {sum(d) / len(d):+.3f} "
          f"(95 % bootstrap interval [{boot[250]:+.3f}, {boot[9749]:+.3f}]); "
          f"GRPO better in {sum(x > 0 for x in d)}, worse in {sum(x < 0 for x in d)}")
