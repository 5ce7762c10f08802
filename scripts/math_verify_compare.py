"""Runs Hugging Face's math-verify on gym's answer corpus (envs/tests/answers.tsv).

Prints how often math-verify's verdict equals the corpus verdict (labelled by gym's documented rules, so this
measures where the two rule sets differ, not which is right), its false accepts and rejects by rule, and its time
per pair. Whole replies (answer tags, newlines) are skipped: math-verify has no answer-tag notion. Sides without
`$`, `\\boxed` or `####` are wrapped in `$…$`, as math-verify expects LaTeX in delimiters.

    python3 -m venv /tmp/mv && /tmp/mv/bin/pip install math-verify
    /tmp/mv/bin/python scripts/math_verify_compare.py envs/tests/answers.tsv

It then times math-verify on the eight typical pairs of `envs/benches/answer.rs` (`answer/pair/typical`).
"""
import re
import sys
import time

from math_verify import parse, verify
rows = []
for line in open(sys.argv[1], encoding="utf-8"):
    if line.startswith("# ") or not line.strip():
        continue
    g, p, v, r = line.rstrip("\n").split("\t")
    def expand(s):
        def rep(m):
            return m.group(1) * int(m.group(2))
        s = re.sub(r"\{\{rep:(.*?):(\d+)\}\}", rep, s)
        return s.replace("⏎", "\n")
    rows.append((expand(g), expand(p), v == "accept", r))
agree = 0; false_acc = 0; false_rej = 0; by_rule = {}
t0 = time.perf_counter(); n = 0
for g, p, acc, r in rows:
    if "<answer>" in p or "</think>" in p or "\n" in p:
        continue  # whole replies: math-verify has no answer-tag notion
    n += 1
    def wrap(x):
        return x if ("$" in x or "\\boxed" in x or "####" in x) else "$" + x + "$"
    try:
        ok = bool(verify(parse(wrap(g)), parse(wrap(p))))
    except Exception:
        ok = False
    if ok == acc: agree += 1
    elif ok: false_acc += 1; by_rule.setdefault(r, []).append(("FA", g[:30], p[:40]))
    else: false_rej += 1; by_rule.setdefault(r, []).append(("FR", g[:30], p[:40]))
dt = time.perf_counter() - t0
print(f"math-verify on {n} tag-content rows: agrees {agree} ({100*agree/n:.1f}%), false accepts {false_acc}, false rejects {false_rej}; {1e6*dt/n:.0f} us/pair")
for r, xs in sorted(by_rule.items()):
    print(r, len(xs), xs[:6])

# The typical pairs of envs/benches/answer.rs, timed the same way (one gold and one prediction read and compared).
PAIRS = [("42", "42"), ("1200", "$1,200"), ("\\frac{3}{4}", "0.75"), ("0.5", "\\boxed{\\frac{1}{2}}"),
         ("#### 72", "The answer is 72."), ("1000000", "1 \\times 10^{6}"), ("\\frac{1}{3}", "0.3333"),
         ("42", "40 or 41 or 42")]


def wrap_side(x):
    return x if ("$" in x or "\\boxed" in x or "####" in x) else "$" + x + "$"


for _ in range(3):
    for g, p in PAIRS:
        verify(parse(wrap_side(g)), parse(wrap_side(p)))
reps = 20
t0 = time.perf_counter()
for _ in range(reps):
    for g, p in PAIRS:
        verify(parse(wrap_side(g)), parse(wrap_side(p)))
dt = time.perf_counter() - t0
print(f"math-verify on the typical pairs: {1e6 * dt / (reps * len(PAIRS)):.0f} us per pair")
