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
    let runtime_dir = private_runtime_dir();
    let result = cli::run(args);
    drop(runtime_dir);
    if let Err(e) = result {
        eprintln!("error: {}", cli::describe(&e));
        std::process::exit(1);
    }
}

/// On a headless box XDG_RUNTIME_DIR is often unset, and the Vulkan loader's Wayland probe
/// then prints "error: XDG_RUNTIME_DIR is invalid or not set" on every run. When it is unset
/// or not a directory, a private (0700) temporary one stands in for this process and is
/// removed at exit. Done before any thread or Vulkan instance exists.
fn private_runtime_dir() -> Option<tempfile::TempDir> {
    let ok = std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .is_some_and(|p| p.is_absolute() && p.is_dir());
    if ok {
        return None;
    }
    let dir = tempfile::Builder::new()
        .prefix("wgpu-infer-runtime-")
        .tempdir()
        .ok()?;
    std::env::set_var("XDG_RUNTIME_DIR", dir.path());
    Some(dir)
}
