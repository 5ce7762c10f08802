"""Checks that a gym-trained LoRA adapter (PEFT format) loads with Python
`peft` onto the Hugging Face base model and gives gym's logits.

    python trainers/scripts/peft_check.py BASE_DIR ADAPTER_DIR GYM_LOGITS.json

GYM_LOGITS.json comes from `cargo run -p trainers --example peft_logits`.
Needs torch, transformers and peft (the H100 machine has them).
"""
import json
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM


def main() -> int:
    base_dir, adapter_dir, logits_path = sys.argv[1:4]
    ref = json.load(open(logits_path))
    ids = torch.tensor(ref["input_ids"])
    base = AutoModelForCausalLM.from_pretrained(base_dir, torch_dtype=torch.float32)
    base.eval()
    with torch.no_grad():
        base_logits = base(input_ids=ids).logits
    model = PeftModel.from_pretrained(base, adapter_dir)
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    gym_base = torch.tensor(ref["base_logits"])
    gym = torch.tensor(ref["logits"])
    d_base = (base_logits - gym_base).abs().max().item()
    d = (logits - gym).abs().max().item()
    shift = (gym - gym_base).abs().max().item()
    n_lora = sum(1 for n, _ in model.named_parameters() if "lora_" in n)
    print(f"lora tensors loaded by peft: {n_lora}")
    print(f"max |logit| difference, base model:        {d_base:.3e}")
    print(f"max |logit| difference, base + adapter:    {d:.3e}")
    print(f"max |logit| change the adapter causes:     {shift:.3e}")
    ok = d_base < 1e-4 and d < 1e-4 and shift > 1e-2 and n_lora > 0
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
