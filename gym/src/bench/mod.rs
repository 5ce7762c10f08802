//! `gym bench`: how good is a policy on a fixed suite of envs, and how many
//! sessions can an env server hold.
//!
//! * `gym bench --policy P --suite default` — policy benchmark over a
//!   versioned suite file (`suites/default.toml`): per env success rate and
//!   mean reward with 95% confidence intervals, mean steps, tokens, policy
//!   latency; JSON + Markdown + SVG chart; baselines as reference rows.
//! * `gym bench compare a.json b.json` — two policy reports side by side.
//! * `gym bench server --url … --sessions 1,16,64,256,1024` — OpenEnv-style
//!   load test of any OpenEnv server (gym's or Python's).
//! * `gym bench model --shape qwen2.5-0.5b --what gen|grpo --device cuda` —
//!   decoder and GRPO-step speed on a random-init model of a real shape.

pub mod chart;
pub mod model;
pub mod policy;
pub mod report;
pub mod server;
pub mod stats;

/// Arguments of `gym bench`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    /// `compare` or `server`; without one, the policy benchmark runs.
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    /// Policy-benchmark options.
    #[command(flatten)]
    pub policy: policy::PolicyBenchArgs,
}

/// `gym bench` sub-commands.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Show two policy-benchmark reports (JSON) side by side.
    Compare(policy::CompareArgs),
    /// Load-test an OpenEnv server (gym serve or OpenEnv's Python server).
    Server(server::ServerBenchArgs),
    /// Generation and GRPO-step speed of a random-init model of a real shape.
    Model(model::ModelBenchArgs),
}

/// `gym bench`.
pub fn bench(a: BenchArgs) -> anyhow::Result<()> {
    match a.command {
        Some(BenchCommand::Compare(c)) => policy::compare(c),
        Some(BenchCommand::Server(s)) => server::run(s),
        Some(BenchCommand::Model(m)) => model::run(m),
        None => policy::run(a.policy),
    }
}
