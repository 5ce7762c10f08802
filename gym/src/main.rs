//! The `gym` command line.

use clap::{Parser, Subcommand};

/// Counts heap bytes so the Rhai sandbox's memory budget is exact per call.
#[global_allocator]
static ALLOC: sandbox::CountingAlloc = sandbox::CountingAlloc;

/// gym: environments for training LLMs with reinforcement learning.
#[derive(Parser)]
#[command(name = "gym", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List envs (with their options) and policies.
    List,
    /// Run episodes of an env with a policy and print a summary.
    Run(gym::run::RunArgs),
    /// Play an env in the terminal as a human.
    Play(gym::play::PlayArgs),
    /// Pretty-print a trajectory file with reward breakdowns.
    Show(gym::show::ShowArgs),
    /// Serve an env over OpenEnv's protocol (WebSocket /ws + HTTP).
    Serve(gym::serve::ServeArgs),
    /// Benchmark policies over a suite of envs, or an env server under load.
    Bench(gym::bench::BenchArgs),
    /// Fine-tune a model with GRPO + LoRA on an env's rewards.
    Train(gym::train::TrainArgs),
    /// Merge a LoRA adapter into its base: Hugging Face folder or GGUF (f16, q8_0).
    Export(gym::export::ExportArgs),
    /// Draw training curves (reward, KL, …) from a metrics.jsonl to PNG or SVG.
    Plot(gym::plot::PlotArgs),
    /// Chat with a model in the terminal (stdin lines in, replies out).
    Chat(gym::chat::ChatArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Tensor buffers are reused from the heap instead of re-mapped per op.
    models::heap::tune_heap_for_tensors();
    match cli.command {
        Command::List => gym::run::list(),
        Command::Run(a) => gym::run::run(a),
        Command::Play(a) => gym::play::play(a),
        Command::Show(a) => gym::show::show(a),
        Command::Serve(a) => gym::serve::serve(a),
        Command::Bench(a) => gym::bench::bench(a),
        Command::Train(a) => gym::train::train(a),
        Command::Export(a) => gym::export::export(a),
        Command::Plot(a) => gym::plot::plot(a),
        Command::Chat(a) => gym::chat::chat(a),
    }
}
