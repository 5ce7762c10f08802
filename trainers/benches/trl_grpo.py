#!/usr/bin/env python3
"""TRL baseline for gym's GRPO step (`gym bench model --what grpo` on GPUs,
`trainers/benches/grpo_step.rs` on CPUs): TRL's GRPOTrainer on a random-init
model of the same shape with the same settings, timing each optimizer step.

    python3 trainers/benches/trl_grpo.py --shape toy --device cpu --steps 6
    python3 trainers/benches/trl_grpo.py --shape qwen2.5-0.5b --device cuda --new-tokens 256 --group 8 --lora-r 16

Shapes: `toy` = grpo.md §14's L5 setup (2-layer Qwen2, hidden 64, char vocab
of 19, init std 0.2, LoRA r 8 α 16 all-linear, 8 prompts × 8 generations,
8 new tokens, dapo, β 0, lr 3e-3) on count_a; `qwen2.5-0.5b` / `qwen3-4b` =
the real configs with random weights (bf16 on GPUs), one prompt of
--prompt-len random tokens × --group completions of exactly --new-tokens
tokens, LoRA r α=2r all-linear, β 0. Prints one JSON line: median step
seconds over the timed steps (after --warmup), peak memory (torch's
max_memory_allocated on GPUs, max RSS on CPUs).
"""
import argparse
import json
import random
import resource
import statistics
import time

import torch
import transformers
import trl
from datasets import Dataset
from peft import LoraConfig
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, TrainerCallback

p = argparse.ArgumentParser()
p.add_argument("--shape", default="toy")
p.add_argument("--device", default="cpu")
p.add_argument("--steps", type=int, default=4)
p.add_argument("--warmup", type=int, default=1)
p.add_argument("--prompt-len", type=int, default=128)
p.add_argument("--new-tokens", type=int, default=256)
p.add_argument("--group", type=int, default=8)
p.add_argument("--lora-r", type=int, default=16)
p.add_argument("--micro-batch", type=int, default=0)
p.add_argument("--out", default="/tmp/trl_grpo_out")
a = p.parse_args()
torch.manual_seed(0)
random.seed(0)
cuda = a.device.startswith("cuda")

SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]
CHARS = "0123456789+=abc"


def char_tokenizer():
    vocab = {t: i for i, t in enumerate(SPECIALS + list(CHARS))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    t = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>",
                                unk_token="<unk>")
    t.padding_side = "left"
    return t


if a.shape == "toy":
    tok = char_tokenizer()
    cfg = transformers.Qwen2Config(vocab_size=19, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                                   tie_word_embeddings=True, initializer_range=0.2, bos_token_id=1, eos_token_id=2,
                                   pad_token_id=0)
    model = transformers.Qwen2ForCausalLM(cfg)
    with torch.no_grad():  # grpo.md §14: embeddings too at std 0.2
        model.model.embed_tokens.weight.normal_(0.0, 0.2)
    prompts = ["".join(random.choice("bc") for _ in range(3)) + "=" for _ in range(4096)]

    def reward(completions, **kw):
        return [sum(c == "a" for c in s) / max(len(s), 1) for s in completions]

    group, per_device, new_tokens, lora_r, lora_alpha, lr = 8, 64, 8, 8, 16, 3e-3
else:
    if a.shape == "qwen2.5-0.5b":
        cfg = transformers.Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864,
                                       num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                                       max_position_embeddings=32768, rope_theta=1e6, rms_norm_eps=1e-6,
                                       tie_word_embeddings=True)
        cls = transformers.Qwen2ForCausalLM
    elif a.shape == "qwen3-4b":
        cfg = transformers.Qwen3Config(vocab_size=151936, hidden_size=2560, intermediate_size=9728,
                                       num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                                       max_position_embeddings=40960, rope_theta=1e6, rms_norm_eps=1e-6,
                                       tie_word_embeddings=True)
        cls = transformers.Qwen3ForCausalLM
    else:
        raise SystemExit(f"unknown shape {a.shape}")
    # An EOS id that `min_new_tokens` keeps from ending any sample early.
    cfg.eos_token_id = cfg.vocab_size - 1
    cfg.pad_token_id = 0
    with torch.device(a.device):
        model = cls(cfg).to(torch.bfloat16 if cuda else torch.float32)
    # A word-level tokenizer over the full vocabulary: token i <-> "t{i} ".
    vocab = {f"t{i}": i for i in range(cfg.vocab_size)}
    inner = Tokenizer(models.WordLevel(vocab=vocab, unk_token="t3"))
    inner.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=inner, pad_token="t0", unk_token="t3",
                                  eos_token=f"t{cfg.vocab_size - 1}")
    tok.padding_side = "left"
    rng = random.Random(7)
    prompts = [" ".join(f"t{rng.randrange(cfg.vocab_size)}" for _ in range(a.prompt_len)) for _ in range(256)]

    def reward(completion_ids=None, **kw):
        return [sum(t % 2 == 0 for t in c) / max(len(c), 1) for c in completion_ids]

    group, new_tokens, lora_r = a.group, a.new_tokens, a.lora_r
    per_device = a.micro_batch or a.group
    lora_alpha, lr = 2 * a.lora_r, 1e-5

ds = Dataset.from_dict({"prompt": prompts})
targs = trl.GRPOConfig(
    output_dir=a.out, per_device_train_batch_size=per_device, gradient_accumulation_steps=group // per_device
    if a.shape != "toy" else 1, num_generations=group, max_completion_length=new_tokens, temperature=1.0,
    learning_rate=lr, lr_scheduler_type="constant", beta=0.0, loss_type="dapo", scale_rewards="group",
    max_steps=a.warmup + a.steps, logging_steps=1, save_strategy="no", report_to=[], seed=0,
    use_cpu=not cuda, bf16=cuda, fp16=False, dataloader_num_workers=0, disable_tqdm=True,
    generation_kwargs={"min_new_tokens": new_tokens} if a.shape != "toy" else None,
)
peft_cfg = LoraConfig(r=lora_r, lora_alpha=lora_alpha, target_modules="all-linear", lora_dropout=0.0, task_type="CAUSAL_LM")


class Timer(TrainerCallback):
    def __init__(self):
        self.times, self.t0 = [], None

    def on_step_begin(self, args, state, control, **kw):
        if cuda:
            torch.cuda.synchronize()
        self.t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        if cuda:
            torch.cuda.synchronize()
        self.times.append(time.perf_counter() - self.t0)


timer = Timer()
trainer = trl.GRPOTrainer(model=model, reward_funcs=reward, args=targs, train_dataset=ds, processing_class=tok,
                          peft_config=peft_cfg, callbacks=[timer])
if cuda:
    torch.cuda.reset_peak_memory_stats()
trainer.train()
timed = timer.times[a.warmup:]
rewards = [h["reward"] for h in trainer.state.log_history if "reward" in h]
out = {
    "side": "trl", "trl": trl.__version__, "transformers": transformers.__version__, "torch": torch.__version__,
    "shape": a.shape, "device": a.device, "threads": torch.get_num_threads(), "step_seconds": statistics.median(timed),
    "steps": timed, "rewards": rewards,
}
if cuda:
    out["peak_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
    out["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30
else:
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
