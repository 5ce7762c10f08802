//! Rollout scaling: the same random-policy 2048 workload on 1 and 2 threads
//! (results are identical; only wall time differs), and one-step math.
#![allow(missing_docs)] // criterion_group! generates undocumented public items

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use envs::{Registry, RolloutConfig, SamplingParams};

fn bench(c: &mut Criterion) {
    let reg = Registry::builtin();
    let mut g = c.benchmark_group("rollout");
    g.sample_size(10);
    for (env, episodes) in [("2048", 64usize), ("math", 2048)] {
        let opts = reg.options(env, &[] as &[&str]).expect("default options");
        let maker = reg.maker(env, &opts).expect("env builds");
        let policy = policies::make_policy("random").expect("random policy");
        g.throughput(Throughput::Elements(episodes as u64));
        for threads in [1usize, 2] {
            let cfg = RolloutConfig {
                env_id: env.into(),
                options: opts.to_map(),
                episodes,
                seed: 1,
                group_size: 1,
                threads,
                sampling: SamplingParams::default(),
                history: None,
            };
            g.bench_with_input(BenchmarkId::new(format!("{env}_random_episodes"), threads), &cfg, |b, cfg| {
                b.iter(|| envs::rollout(&maker, policy.as_ref(), cfg, &|_| {}).expect("rollout"))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
