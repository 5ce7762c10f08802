"""Prints the gym-tiny training curves as Markdown tables (BENCHMARKS.md).

Usage: python3 scripts/gym_tiny_curves.py [OUT]   (OUT = runs/gym-tiny)
SFT: loss / mean_token_accuracy at every 25th step. GRPO: mean reward (and the
`outcome` term) over the generations of each 5-step window, on training seeds.
Held-out: the `gym run` summaries written by scripts/train_gym_tiny.sh.
"""
import json, sys

out = sys.argv[1] if len(sys.argv) > 1 else "runs/gym-tiny"
load = lambda p: [json.loads(l) for l in open(p) if l.strip()]
sft = load(f"{out}/sft/metrics.jsonl")
print("| SFT step | loss | mean_token_accuracy |\n|---|---|---|")
for m in sft:
    s = int(m["step"])
    if s == 1 or s % 25 == 0 or s == len(sft):
        print(f"| {s} | {m['loss']:.3f} | {m['mean_token_accuracy']:.3f} |")
grpo = load(f"{out}/grpo/metrics.jsonl")
print("\n| GRPO steps | mean reward (training seeds) | `outcome` | `program` |\n|---|---|---|---|")
for i in range(0, len(grpo), 5):
    w = grpo[i:i + 5]
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
