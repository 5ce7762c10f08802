#!/usr/bin/env python3
"""HF transformers baseline for benches/generate.rs: the same random-init
Qwen2.5-0.5B-shaped model (f32, CPU), the same workloads: prefill of 64
tokens; 16-token prompt + 16 sampled tokens for n = 1 and n = 8.

    python3 models/benches/hf_generate.py
"""
import statistics
import time

import torch
import transformers

torch.manual_seed(0)
cfg = transformers.Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                               num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                               rope_theta=1e6, rms_norm_eps=1e-6, tie_word_embeddings=True)
m = transformers.Qwen2ForCausalLM(cfg).float().eval()
ids = torch.tensor([[i * 2311 % 151936 for i in range(64)]])


def timed(f, reps=5):
    f()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def gen(n):
    return m.generate(ids[:, :16], max_new_tokens=16, min_new_tokens=16, do_sample=True, top_k=0, top_p=1.0,
                      temperature=1.0, num_return_sequences=n, pad_token_id=0, eos_token_id=None)


with torch.no_grad():
    p = timed(lambda: m(ids))
    g1 = timed(lambda: gen(1))
    g8 = timed(lambda: gen(8))
print(f"transformers {transformers.__version__} torch {torch.__version__} threads {torch.get_num_threads()}")
print(f"prefill_64_b1: {p * 1e3:.1f} ms  {64 / p:.1f} tok/s")
print(f"prompt16_decode16_n1: {g1 * 1e3:.1f} ms  {16 / g1:.1f} tok/s")
print(f"prompt16_decode16_n8: {g8 * 1e3:.1f} ms  {128 / g8:.1f} tok/s")
