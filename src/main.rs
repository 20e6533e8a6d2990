fn main() {
    match wgpu_infer::Device::new() {
        Ok(d) => print!("{}", d.describe()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
