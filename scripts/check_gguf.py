#!/usr/bin/env python3
"""Checks a GGUF written by `gym export` with the `gguf` Python package.

    python check_gguf.py FILE.gguf MERGED_HF_DIR TYPE     (TYPE: f16 | q8_0)

MERGED_HF_DIR is the f32 Hugging Face export of the same merge. The script
reads it independently (safetensors parsed with numpy, tokenizer.json,
config.json) and checks that the GGUF has llama.cpp's metadata and tensor
names, and that every dequantized tensor equals the merged weight: f16
within 1e-3 relative, q8_0 within its quantization error (per block of 32,
half a step of amax/127 plus the f16 rounding of the scale). Llama's q/k
rows are compared after the permutation llama.cpp's converter applies.
Prints `OK FILE` on success, raises otherwise.
"""
import json
import math
import os
import struct
import sys

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader
from gguf.quants import dequantize


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        assert meta["dtype"] == "F32", f"{name}: expected an f32 export, got {meta['dtype']}"
        a, b = meta["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=np.float32).reshape(meta["shape"])
    return out


def permute(w, n_head):
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


LAYER = {
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def gguf_name(hf):
    top = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
           "lm_head.weight": "output.weight"}
    if hf in top:
        return top[hf]
    _, _, n, rest = hf.split(".", 3)
    return f"blk.{n}.{LAYER[rest]}"


def field(reader, key):
    f = reader.fields.get(key)
    assert f is not None, f"missing metadata {key}"
    return f.contents()


def check(path, merged_dir, qtype):
    cfg = json.load(open(os.path.join(merged_dir, "config.json")))
    tok = json.load(open(os.path.join(merged_dir, "tokenizer.json")))
    arch = cfg["model_type"]
    reader = GGUFReader(path)
    assert reader.fields["GGUF.version"].contents() in (2, 3)

    # Hyper-parameters.
    rope = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    theta = cfg.get("rope_theta", rope.get("rope_theta"))
    head_dim = cfg.get("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"])
    want = {
        "general.architecture": arch,
        "general.file_type": {"f16": 1, "q8_0": 7}[qtype],
        f"{arch}.context_length": cfg["max_position_embeddings"],
        f"{arch}.embedding_length": cfg["hidden_size"],
        f"{arch}.block_count": cfg["num_hidden_layers"],
        f"{arch}.feed_forward_length": cfg["intermediate_size"],
        f"{arch}.attention.head_count": cfg["num_attention_heads"],
        f"{arch}.attention.head_count_kv": cfg["num_key_value_heads"],
        f"{arch}.attention.key_length": head_dim,
        f"{arch}.attention.value_length": head_dim,
        "tokenizer.ggml.model": "gpt2",
    }
    for k, v in want.items():
        got = field(reader, k)
        assert got == v, f"{k}: {got!r} != {v!r}"
    assert math.isclose(field(reader, f"{arch}.rope.freq_base"), theta, rel_tol=1e-6)
    assert math.isclose(field(reader, f"{arch}.attention.layer_norm_rms_epsilon"), cfg["rms_norm_eps"], rel_tol=1e-5)

    # Tokenizer.
    tokens = field(reader, "tokenizer.ggml.tokens")
    types = field(reader, "tokenizer.ggml.token_type")
    assert len(tokens) == len(types) == cfg["vocab_size"], (len(tokens), cfg["vocab_size"])
    added = {a["id"] for a in tok["added_tokens"]}
    for t, i in tok["model"]["vocab"].items():
        assert tokens[i] == t and (i in added or types[i] == 1), (i, tokens[i], t, types[i])
    for a in tok["added_tokens"]:
        assert tokens[a["id"]] == a["content"] and types[a["id"]] == (3 if a["special"] else 4), a
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    assert field(reader, "tokenizer.ggml.merges") == merges
    assert field(reader, "tokenizer.ggml.pre") in ("qwen2", "llama-bpe", "gpt-2")
    tcfg = json.load(open(os.path.join(merged_dir, "tokenizer_config.json")))
    ids = {t: i for t, i in tok["model"]["vocab"].items()}
    ids.update({a["content"]: a["id"] for a in tok["added_tokens"]})
    assert field(reader, "tokenizer.ggml.eos_token_id") == ids[tcfg["eos_token"]]
    if tcfg.get("bos_token"):
        assert field(reader, "tokenizer.ggml.bos_token_id") == ids[tcfg["bos_token"]]
    tpl_file = os.path.join(merged_dir, "chat_template.jinja")
    template = open(tpl_file).read() if os.path.exists(tpl_file) else tcfg["chat_template"]
    assert field(reader, "tokenizer.chat_template") == template

    # Tensors.
    weights = load_safetensors(os.path.join(merged_dir, "model.safetensors"))
    expected = {}
    for hf, w in weights.items():
        if arch == "llama" and hf.endswith(("q_proj.weight", "q_proj.bias")):
            w = permute(w, cfg["num_attention_heads"])
        elif arch == "llama" and hf.endswith(("k_proj.weight", "k_proj.bias")):
            w = permute(w, cfg["num_key_value_heads"])
        expected[gguf_name(hf)] = w
    got = {t.name: t for t in reader.tensors}
    extra = set(got) - set(expected)
    if rope.get("rope_type") == "llama3":
        assert "rope_freqs.weight" in got, "llama3 rope scaling needs rope_freqs.weight"
        extra.discard("rope_freqs.weight")
    assert not extra and set(expected) <= set(got), (sorted(extra), sorted(set(expected) - set(got)))
    want_type = {"f16": GGMLQuantizationType.F16, "q8_0": GGMLQuantizationType.Q8_0}[qtype]
    for name, w in expected.items():
        t = got[name]
        assert [int(x) for x in t.shape] == list(reversed(w.shape)), (name, t.shape, w.shape)
        d = dequantize(t.data, t.tensor_type).reshape(w.shape).astype(np.float64)
        w = w.astype(np.float64)
        if w.ndim == 1:
            assert t.tensor_type == GGMLQuantizationType.F32, (name, t.tensor_type)
            assert np.array_equal(d, w), name
        elif t.tensor_type == GGMLQuantizationType.F16 and (qtype == "f16" or w.shape[-1] % 32):
            err = np.abs(d - w).max()
            assert err <= 1e-3 * np.abs(w).max() + 1e-7, (name, err)
        else:
            assert t.tensor_type == want_type, (name, t.tensor_type)
            blocks_w = w.reshape(-1, 32)
            step = np.abs(blocks_w).max(axis=1, keepdims=True) / 127.0
            err = np.abs(d.reshape(-1, 32) - blocks_w)
            assert (err <= 0.6 * step + 1e-7).all(), (name, float((err / (step + 1e-30)).max()))
            assert err.max() > 0, f"{name}: q8_0 reproduced the weights exactly (not quantized?)"
    print(f"OK {path} ({arch}, {qtype}, {len(got)} tensors, {len(tokens)} tokens)")


if __name__ == "__main__":
    check(sys.argv[1], sys.argv[2], sys.argv[3])
