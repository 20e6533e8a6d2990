use clap::Args;
use std::path::{Path, PathBuf};
use wgpu_infer::models::{detect_kind, detect_model_type, parse_config, ModelKind};
use wgpu_infer::weights::Weights;
use wgpu_infer::{Error, Result};

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// A .safetensors file, or a model folder (config.json + model.safetensors), or a hub id
    /// (org/name) in the Hugging Face cache.
    path: String,
    /// One JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct TensorRow {
    name: String,
    dtype: String,
    shape: Vec<usize>,
    bytes: usize,
}

#[derive(serde::Serialize)]
struct Report {
    file: PathBuf,
    model_type: Option<String>,
    /// The loader family that runs it (bert, gpt2, vit, yolov8).
    family: Option<&'static str>,
    /// Where the model type came from: config.json's model_type or the tensor names.
    detected_from: Option<&'static str>,
    tensors: usize,
    parameters: usize,
    total_bytes: usize,
    warnings: Vec<String>,
    tensor_list: Vec<TensorRow>,
}

fn elements(shape: &[usize]) -> usize {
    shape.iter().product()
}

pub fn run(args: InspectArgs) -> Result<()> {
    let given = Path::new(&args.path);
    let path = if given.exists() {
        given.to_path_buf()
    } else {
        let opts = wgpu_infer::hub::HubOptions::from_env();
        wgpu_infer::hub::resolve(&args.path, &opts)?
    };
    let (file, config) = if path.is_dir() {
        let cfg = path.join("config.json");
        let config = if cfg.is_file() {
            let text = std::fs::read_to_string(&cfg).map_err(|e| Error::io(&cfg, e))?;
            Some(parse_config(&text).map_err(|msg| Error::Config {
                path: cfg.clone(),
                msg,
            })?)
        } else {
            None
        };
        (path.join("model.safetensors"), config)
    } else {
        (path.clone(), None)
    };
    if !file.is_file() {
        return Err(Error::Config {
            path: file,
            msg: "missing weights (model.safetensors)".into(),
        });
    }
    let w = Weights::open(&file)?;
    let list = w.list();
    let by_names = detect_kind(&w);
    let mut warnings = Vec::new();
    let (kind, from): (Option<ModelKind>, Option<&'static str>) = match (&config, by_names) {
        (Some(c), names) => {
            if let Some(n) = names.filter(|&n| n != c.kind()) {
                warnings.push(format!(
                    "config.json says {} but the tensor names look like {n}",
                    c.kind()
                ));
            }
            (Some(c.kind()), Some("config.json model_type"))
        }
        (None, Some(n)) => (Some(n), Some("tensor names")),
        (None, None) => (None, None),
    };
    let report = Report {
        file: file.clone(),
        model_type: match &config {
            Some(c) => Some(c.model_type()),
            None => detect_model_type(&w).map(str::to_string),
        },
        family: kind.map(ModelKind::name),
        detected_from: from,
        tensors: list.len(),
        parameters: list.iter().map(|t| elements(&t.shape)).sum(),
        total_bytes: list.iter().map(|t| t.bytes).sum(),
        warnings,
        tensor_list: list
            .into_iter()
            .map(|t| TensorRow {
                name: t.name,
                dtype: t.dtype,
                shape: t.shape,
                bytes: t.bytes,
            })
            .collect(),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("serializable")
        );
        return Ok(());
    }
    let width = report
        .tensor_list
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!("{}", report.file.display());
    match (&report.model_type, report.detected_from) {
        (Some(t), Some(f)) => match report.family.filter(|fam| fam != t) {
            Some(fam) => println!("model type: {t} (the {fam} family's loader; from {f})"),
            None => println!("model type: {t} (from {f})"),
        },
        _ => println!("model type: unknown (no config.json and unrecognized tensor names)"),
    }
    for w in &report.warnings {
        println!("warning: {w}");
    }
    println!(
        "{:<width$}  {:<5}  {:<18}  {:>12}",
        "name", "dtype", "shape", "bytes"
    );
    for t in &report.tensor_list {
        println!(
            "{:<width$}  {:<5}  {:<18}  {:>12}",
            t.name,
            t.dtype,
            format!("{:?}", t.shape),
            t.bytes
        );
    }
    println!(
        "{} tensors, {} parameters, {} bytes ({:.1} MiB)",
        report.tensors,
        report.parameters,
        report.total_bytes,
        report.total_bytes as f64 / (1 << 20) as f64
    );
    Ok(())
}
