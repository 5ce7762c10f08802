//! The model's forward is differentiable end to end: an adapter attached at
//! every [`Linear`] hook receives a non-zero gradient from a loss on the
//! all-position log-probabilities (candle's fused kernels would cut it).

use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device, Result, Tensor, Var};
use models::nn::log_softmax_last;
use models::LinearAdapter;
use policies::llm::LlmPolicy;

/// `base + x·Aᵀ·Bᵀ` with both factors trainable and non-zero.
#[derive(Debug)]
struct LowRank {
    a: Var,
    b: Var,
}

impl LinearAdapter for LowRank {
    fn forward(&self, x: &Tensor, base: &Tensor) -> Result<Tensor> {
        let d = x.dims().to_vec();
        let x2 = x.reshape((d[..d.len() - 1].iter().product::<usize>(), d[d.len() - 1]))?;
        let delta = x2.matmul(&self.a.as_tensor().t()?)?.matmul(&self.b.as_tensor().t()?)?;
        base + delta.reshape(base.shape())?
    }
}

fn check(name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    let mut p = LlmPolicy::load(&dir.display().to_string()).unwrap();
    let mut vars = Vec::new();
    for lin in p.model_mut().linears_mut() {
        let (i, o) = lin.dims();
        let a = Var::randn(0f32, 0.05, (2, i), &Device::Cpu).unwrap();
        let b = Var::randn(0f32, 0.05, (o, 2), &Device::Cpu).unwrap();
        vars.push((lin.name().to_string(), a.clone(), b.clone()));
        lin.set_adapter(Some(Arc::new(LowRank { a, b })));
    }
    assert!(!vars.is_empty());
    let ids = p.encode("What is 12 + 30? The answer is 42.").unwrap();
    let x = Tensor::new(ids.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let logits = p.model().forward(&x, None).unwrap();
    let t = ids.len();
    // Log-prob of each next token (teacher forcing), summed.
    let lp = log_softmax_last(&logits.narrow(1, 0, t - 1).unwrap()).unwrap();
    let targets = Tensor::new(&ids[1..], &Device::Cpu).unwrap().reshape((1, t - 1, 1)).unwrap();
    let loss = lp.gather(&targets, 2).unwrap().sum_all().unwrap().neg().unwrap();
    let grads = loss.backward().unwrap();
    for (n, a, b) in &vars {
        for (which, v) in [("A", a), ("B", b)] {
            let g = grads.get(v.as_tensor()).unwrap_or_else(|| panic!("{n}.{which}: no gradient"));
            let norm = g.to_dtype(DType::F32).unwrap().sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(norm > 0.0, "{n}.{which}: zero gradient");
        }
    }
}

#[test]
fn every_adapter_of_qwen3_gets_a_gradient() {
    check("tiny-qwen3");
}

#[test]
fn every_adapter_of_gpt_oss_gets_a_gradient() {
    check("tiny-gpt-oss");
}

/// With trainable adapters attached every op is tracked; the KV cache must
/// still hold plain keys and values, or it keeps the whole graph of every
/// decoded token alive (the GRPO step's 40 GB generation on a GPU).
#[test]
fn the_kv_cache_holds_no_graph_with_trainable_adapters() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-qwen2");
    let mut p = LlmPolicy::load(&dir.display().to_string()).unwrap();
    for lin in p.model_mut().linears_mut() {
        let (i, o) = lin.dims();
        let a = Var::randn(0f32, 0.05, (2, i), &Device::Cpu).unwrap();
        let b = Var::randn(0f32, 0.05, (o, 2), &Device::Cpu).unwrap();
        lin.set_adapter(Some(Arc::new(LowRank { a, b })));
    }
    let model = p.model();
    let mut cache = model.new_cache();
    let ids = Tensor::new(&[[1u32, 2, 3]], &Device::Cpu).unwrap();
    let logits = model.forward_last(&ids, Some(&mut cache)).unwrap();
    assert!(logits.track_op(), "the adapters are trainable: the step's own output is tracked");
    let next = Tensor::new(&[[4u32]], &Device::Cpu).unwrap();
    model.forward_last(&next, Some(&mut cache)).unwrap();
    assert_eq!(cache.len(), 4);
    for layer in 0..model.config().num_hidden_layers {
        let (k, v) = cache.keys_values(layer).expect("layer cached");
        assert_eq!(k.dim(2).unwrap(), 4);
        assert!(!k.track_op() && !v.track_op(), "layer {layer}: the cache holds a graph");
    }
}
