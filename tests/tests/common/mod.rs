//! Helpers shared by the workspace integration tests.

use envs::{EpisodeRecord, Registry, RolloutConfig};

/// Runs `episodes` episodes of `env` (options `opts`) with `policy` on two
/// threads, one sample per seed, starting at `seed`.
pub fn rollout_env(env: &str, opts: &[String], policy: &str, episodes: usize, seed: u64) -> Vec<EpisodeRecord> {
    let reg = Registry::builtin();
    let o = reg.options(env, opts).unwrap();
    let m = reg.maker(env, &o).unwrap();
    let p = policies::make_policy(policy).unwrap();
    let cfg = RolloutConfig {
        env_id: env.into(),
        options: o.to_map(),
        episodes,
        seed,
        group_size: 1,
        threads: 2,
        sampling: Default::default(),
        history: None,
    };
    envs::rollout(&m, p.as_ref(), &cfg, &|_| {}).unwrap()
}
