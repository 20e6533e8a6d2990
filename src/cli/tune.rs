use clap::Args;
use wgpu_infer::{Device, Result};

/// Kernel choices the autotuner cached for the chosen adapter.
#[derive(Args, Debug)]
pub struct TuneArgs {
    /// List every choice with the times it was made on (the default).
    #[arg(long, conflicts_with = "reset")]
    show: bool,
    /// Forget this adapter's choices; the next runs measure them again.
    #[arg(long)]
    reset: bool,
}

pub fn run(args: TuneArgs) -> Result<()> {
    let dev = Device::new()?;
    let (tuned, location) = dev.tuned_choices();
    if args.reset {
        dev.reset_tuning();
        println!(
            "forgot {} kernel choices of {} ({location})",
            tuned.len(),
            dev.adapter_info().name
        );
        return Ok(());
    }
    println!("adapter: {}", dev.adapter_info().name);
    println!("cache:   {location}");
    if tuned.is_empty() {
        println!("no kernel choices yet: they are measured when a model first runs");
        return Ok(());
    }
    for (key, c) in tuned {
        println!("\n{key}");
        println!("  chosen:  {} ({})", c.variant, c.reason);
        let times: Vec<String> = c
            .secs
            .iter()
            .map(|(v, s)| format!("{v} {:.3} ms", s * 1e3))
            .collect();
        println!("  times:   {} ({})", times.join(", "), c.method);
    }
    Ok(())
}
