//! Subcommands of the `wgpu-infer` binary.

mod info;

use clap::{Parser, Subcommand};
use wgpu_infer::Result;

#[derive(Parser, Debug)]
#[command(name = "wgpu-infer", version, about = "GPU inference with hand-written WGSL kernels: BERT, GPT-2, ViT, YOLOv8")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show the adapters wgpu can see, the one chosen, its limits and features.
    Info(info::InfoArgs),
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Info(a) => info::run(a),
    }
}
