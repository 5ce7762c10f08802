#!/usr/bin/env python3
"""HF transformers baseline for `gym bench model --what gen` on a GPU: the
same random-init shape in bf16, one prompt of --prompt-len random tokens,
prefill (one forward) and `generate` of --group samples × exactly
--new-tokens tokens (sampling, temperature 1, no top-k/top-p), median of
--reps after one warm-up. Prints one JSON line.

    python3 models/benches/hf_generate_gpu.py --shape qwen2.5-0.5b --prompt-len 128 --new-tokens 256 --group 8
"""
import argparse
import json
import statistics
import time

import torch
import transformers

p = argparse.ArgumentParser()
p.add_argument("--shape", default="qwen2.5-0.5b")
p.add_argument("--prompt-len", type=int, default=128)
p.add_argument("--new-tokens", type=int, default=256)
p.add_argument("--group", type=int, default=8)
p.add_argument("--reps", type=int, default=3)
a = p.parse_args()
torch.manual_seed(0)
if a.shape == "qwen2.5-0.5b":
    cfg = transformers.Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                                   num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                                   rope_theta=1e6, rms_norm_eps=1e-6, tie_word_embeddings=True)
    cls = transformers.Qwen2ForCausalLM
elif a.shape == "qwen3-4b":
    cfg = transformers.Qwen3Config(vocab_size=151936, hidden_size=2560, intermediate_size=9728, num_hidden_layers=36,
                                   num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                                   max_position_embeddings=40960, rope_theta=1e6, rms_norm_eps=1e-6,
                                   tie_word_embeddings=True)
    cls = transformers.Qwen3ForCausalLM
else:
    raise SystemExit(f"unknown shape {a.shape}")
with torch.device("cuda"):
    m = cls(cfg).to(torch.bfloat16).eval()
ids = torch.randint(0, cfg.vocab_size, (1, a.prompt_len), device="cuda")


def timed(f):
    f()
    ts = []
    for _ in range(a.reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        f()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def gen():
    out = m.generate(ids, max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens, do_sample=True, top_k=0,
                     top_p=1.0, temperature=1.0, num_return_sequences=a.group, pad_token_id=0, eos_token_id=None)
    assert out.shape == (a.group, a.prompt_len + a.new_tokens)


with torch.no_grad():
    tp = timed(lambda: m(ids))
    tt = timed(gen)
print(json.dumps({"side": "transformers", "transformers": transformers.__version__, "torch": torch.__version__,
                  "shape": a.shape, "prompt_len": a.prompt_len, "new_tokens": a.new_tokens, "group": a.group,
                  "prefill_seconds": tp, "prefill_tokens_per_s": a.prompt_len / tp, "generate_seconds": tt,
                  "decode_tokens_per_s": a.group * a.new_tokens / max(tt - tp, 1e-9),
                  "end_to_end_tokens_per_s": a.group * a.new_tokens / tt,
                  "peak_allocated_gib": torch.cuda.max_memory_allocated() / 2**30}))
