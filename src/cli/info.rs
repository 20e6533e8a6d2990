use clap::Args;
use wgpu_infer::{Device, Result};

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Also measure the adapter's FMA peak (GFLOP/s).
    #[arg(long)]
    peak: bool,
}

pub fn run(args: InfoArgs) -> Result<()> {
    let all = Device::list_adapters();
    println!("visible adapters ({}):", all.len());
    for a in &all {
        println!(
            "  - {} [{}, {}] {}",
            a.name, a.backend, a.device_type, a.driver
        );
    }
    let dev = Device::new()?;
    println!("\nchosen:");
    print!("{}", dev.describe());
    let (tuned, location) = dev.tuned_choices();
    if !tuned.is_empty() {
        println!("kernel choices (cached in {location}; `wgpu-infer tune --show` for times):");
        for (k, v) in tuned {
            println!("  {k:<44} {}", v.variant);
        }
    }
    if args.peak {
        let g = dev.measure_fma_peak(5)?;
        println!("fma peak:  {g:.1} GFLOP/s");
    }
    Ok(())
}
