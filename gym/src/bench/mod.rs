//! `gym bench`: policy and server benchmarks.

/// Arguments of `gym bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {}

/// `gym bench`.
pub fn bench(_a: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
