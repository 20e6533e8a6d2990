//! Model resolution: a local folder, or a Hugging Face Hub id (`org/name`) resolved through the
//! `hf-hub` cache (the same layout as Python's `huggingface_hub`), downloading the files a
//! model needs when online.
//!
//! Cache location: `HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
//! `HF_HUB_OFFLINE=1` never touches the network. With a populated cache no network is needed.

use crate::error::{Error, Result};
use crate::models::{parse_config, ModelKind};
use std::path::{Path, PathBuf};

/// Where to look for hub models and whether downloading is allowed.
#[derive(Clone, Debug)]
pub struct HubOptions {
    /// The hub cache folder (the one holding `models--org--name`); `None` = from the environment.
    pub cache_dir: Option<PathBuf>,
    /// Never download.
    pub offline: bool,
    /// Show download progress bars on stderr.
    pub progress: bool,
}

impl HubOptions {
    /// Options from `HF_HUB_CACHE`, `HF_HOME` and `HF_HUB_OFFLINE`.
    pub fn from_env() -> HubOptions {
        let offline = std::env::var("HF_HUB_OFFLINE")
            .map(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "yes" | "ON" | "on"))
            .unwrap_or(false);
        HubOptions {
            cache_dir: std::env::var_os("HF_HUB_CACHE").map(PathBuf::from),
            offline,
            progress: false,
        }
    }

    fn cache(&self) -> hf_hub::Cache {
        match &self.cache_dir {
            Some(d) => hf_hub::Cache::new(d.clone()),
            None => hf_hub::Cache::from_env(),
        }
    }
}

/// Whether `s` has the shape of a hub model id: `org/name` with letters, digits, `-`, `_`, `.`.
pub fn is_hub_id(s: &str) -> bool {
    let ok = |p: &str| {
        !p.is_empty()
            && !p.starts_with('.')
            && !p.starts_with('-')
            && p.len() <= 96
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match s.split_once('/') {
        Some((org, name)) => ok(org) && ok(name) && !name.contains("..") && !org.contains(".."),
        None => false,
    }
}

/// Files a model folder of `kind` needs, and files it uses when present.
fn files_for(kind: Option<ModelKind>) -> (&'static [&'static str], &'static [&'static str]) {
    match kind {
        Some(ModelKind::Bert) => (
            &["model.safetensors", "tokenizer.json"],
            &[
                "modules.json",
                "sentence_bert_config.json",
                "1_Pooling/config.json",
            ],
        ),
        Some(ModelKind::Gpt2) => (&["model.safetensors", "tokenizer.json"], &[]),
        Some(ModelKind::Llama) => (
            &["model.safetensors", "tokenizer.json"],
            &["generation_config.json", "tokenizer_config.json"],
        ),
        Some(ModelKind::Vit) => (&["model.safetensors"], &["preprocessor_config.json"]),
        Some(ModelKind::Clip) => (
            &["model.safetensors", "tokenizer.json"],
            &["preprocessor_config.json"],
        ),
        Some(ModelKind::Yolo) | None => (&["model.safetensors"], &[]),
    }
}

fn kind_of(config: &Path) -> Option<ModelKind> {
    let text = std::fs::read_to_string(config).ok()?;
    parse_config(&text).ok().map(|c| c.kind())
}

/// A local folder as is; a hub id through the cache (downloading unless offline). The result
/// is a folder the model loaders accept.
pub fn resolve(spec: &str, opts: &HubOptions) -> Result<PathBuf> {
    let local = Path::new(spec);
    if local.exists() {
        return Ok(local.to_path_buf());
    }
    if !is_hub_id(spec) {
        return Err(Error::Config {
            path: local.to_path_buf(),
            msg: "model directory does not exist (and it is not a hub id of the form org/name)"
                .into(),
        });
    }
    let cache = opts.cache();
    let repo_dir = cache
        .path()
        .join(format!("models--{}", spec.replace('/', "--")));
    let cached = cache.model(spec.to_string());
    // 1. Everything already in the cache: no network at all.
    let mut missing: Vec<String> = Vec::new();
    if let Some(cfg) = cached.get("config.json") {
        let (need, _) = files_for(kind_of(&cfg));
        missing.extend(
            need.iter()
                .filter(|f| cached.get(f).is_none())
                .map(|f| f.to_string()),
        );
        if missing.is_empty() {
            return snapshot_folder(spec, &repo_dir, &cfg);
        }
    } else {
        missing.push("config.json".into());
        missing.push("model.safetensors".into());
    }
    let lacks = format!(
        "not a local folder, and the Hugging Face cache at {} lacks {}",
        repo_dir.display(),
        missing.join(", ")
    );
    if opts.offline {
        return Err(Error::Model {
            spec: spec.into(),
            msg: format!("{lacks}; HF_HUB_OFFLINE is set, so nothing was downloaded"),
        });
    }
    // 2. Download what is missing.
    let api = hf_hub::api::sync::ApiBuilder::from_cache(cache.clone())
        .with_progress(opts.progress)
        .build()
        .map_err(|e| Error::Model {
            spec: spec.into(),
            msg: format!("{lacks}; cannot start the hub client: {e}"),
        })?;
    let remote = api.model(spec.to_string());
    let fetch = |file: &str| {
        remote.get(file).map_err(|e| Error::Model {
            spec: spec.into(),
            msg: format!("{lacks}; downloading {file} failed: {e}"),
        })
    };
    let cfg = fetch("config.json")?;
    let (need, optional) = files_for(kind_of(&cfg));
    for f in need {
        fetch(f)?;
    }
    for f in optional {
        // Optional files may not exist in the repository.
        let _ = remote.get(f);
    }
    snapshot_folder(spec, &repo_dir, &cfg)
}

/// The snapshot folder holding `config` (a file the cache resolved), which must lie inside
/// the repository's cache folder: a `refs/main` of `../../../x` (or a snapshot symlinked
/// elsewhere) is refused rather than followed out of the cache.
fn snapshot_folder(spec: &str, repo_dir: &Path, config: &Path) -> Result<PathBuf> {
    let outside = |why: String| Error::Model {
        spec: spec.into(),
        msg: format!(
            "the hub cache at {} is corrupt: {why}; delete that folder and download again",
            repo_dir.display()
        ),
    };
    let dir = config
        .parent()
        .ok_or_else(|| outside(format!("{} has no folder", config.display())))?;
    let real_repo =
        std::fs::canonicalize(repo_dir).map_err(|e| outside(format!("cannot resolve it ({e})")))?;
    let real_dir = std::fs::canonicalize(dir)
        .map_err(|e| outside(format!("cannot resolve {} ({e})", dir.display())))?;
    if !real_dir.starts_with(real_repo.join("snapshots")) {
        return Err(outside(format!(
            "its snapshot {} resolves to {}, outside {}",
            dir.display(),
            real_dir.display(),
            real_repo.join("snapshots").display()
        )));
    }
    Ok(real_dir)
}

#[cfg(test)]
mod tests {
    use super::is_hub_id;

    #[test]
    fn hub_ids() {
        for ok in [
            "sentence-transformers/all-MiniLM-L6-v2",
            "openai-community/gpt2",
            "google/vit-base-patch16-224",
            "a/b",
        ] {
            assert!(is_hub_id(ok), "{ok}");
        }
        for bad in [
            "gpt2",
            "/abs/path",
            "./rel",
            "a/b/c",
            "../x",
            "a/..",
            "org/",
            "/name",
            "org/na me",
        ] {
            assert!(!is_hub_id(bad), "{bad}");
        }
    }
}
