"""Writes gym-tiny's tokenizer.json and config.json (policies/assets/gym-tiny/).

The vocabulary: 5 specials, printable ASCII + newline (a BPE model without
merges, i.e. characters), and one added token per text piece listed in
`envs/src/games/strategy/programs.rs` (`FRAGMENTS`), matched longest-first.
Run from anywhere: python3 scripts/gym_tiny_tokenizer.py
"""
import json, os, re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "policies", "assets", "gym-tiny")
src = open(os.path.join(ROOT, "envs", "src", "games", "strategy", "programs.rs")).read()
block=src[src.index('pub const FRAGMENTS'):]
block=block[block.index('= &[')+4:block.index('\n];')]
frags=[]
for m in re.finditer(r'^\s*"((?:[^"\\]|\\.)*)",\s*$', block, re.M):
    frags.append(json.loads('"'+m.group(1)+'"'))
specials=["<|pad|>","<|end|>","<|user|>","<|assistant|>","<|unk|>"]
chars=[chr(c) for c in range(32,127)]+["\n"]
vocab={}
for t in specials+chars: vocab[t]=len(vocab)
added=[]
for i,t in enumerate(specials):
    added.append({"id":i,"content":t,"single_word":False,"lstrip":False,"rstrip":False,"normalized":False,"special":True})
for f in frags:
    if f in vocab: continue
    vid=len(vocab); vocab[f]=vid
    added.append({"id":vid,"content":f,"single_word":False,"lstrip":False,"rstrip":False,"normalized":False,"special":False})
tok={"version":"1.0","truncation":None,"padding":None,"added_tokens":added,"normalizer":None,"pre_tokenizer":None,
 "post_processor":None,"decoder":{"type":"Fuse"},
 "model":{"type":"BPE","dropout":None,"unk_token":"<|unk|>","continuing_subword_prefix":None,"end_of_word_suffix":None,
  "fuse_unk":False,"byte_fallback":False,"ignore_merges":False,"vocab":vocab,"merges":[]}}
json.dump(tok,open(os.path.join(OUT, 'tokenizer.json'), 'w'),indent=1,ensure_ascii=False)
V=len(vocab)
print(f"{len(frags)} fragments, vocabulary {V}")
cfg={"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","vocab_size":V,"hidden_size":128,"intermediate_size":384,
 "num_hidden_layers":3,"num_attention_heads":4,"num_key_value_heads":2,"max_position_embeddings":256,"rms_norm_eps":1e-6,
 "rope_theta":10000.0,"tie_word_embeddings":True,"hidden_act":"silu","bos_token_id":2,"eos_token_id":1,"pad_token_id":0,
 "initializer_range":0.02,"torch_dtype":"float32","use_sliding_window":False,"sliding_window":None}
json.dump(cfg,open(os.path.join(OUT, 'config.json'), 'w'),indent=2)
