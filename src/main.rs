//! The `wgpu-infer` command line.

mod cli;

use clap::Parser;

fn main() {
    // Die quietly on a closed pipe (`wgpu-infer inspect ... | head`) like other Unix tools,
    // instead of panicking in println!.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let args = cli::Cli::parse();
    if let Err(e) = cli::run(args) {
        eprintln!("error: {}", cli::describe(&e));
        std::process::exit(1);
    }
}
