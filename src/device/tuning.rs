//! The tuning cache: kernel-variant choices per adapter, keyed by an op-defined string (for
//! example `matmul:m1:w:tiled/reg/texture`). A leaf: it stores and persists choices; the tuner
//! that measures them lives in the graph layer and the tunables beside their ops.
//!
//! Native builds persist choices in `$WGPU_INFER_CACHE_DIR/tune.json` (default
//! `$XDG_CACHE_HOME/wgpu-infer` or `~/.cache/wgpu-infer`), keyed by adapter name and driver;
//! the location is read once, when the device opens. In the browser the cache lives in memory.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Cached kernel choices of one adapter.
#[derive(Debug, Default)]
pub struct TuneCache {
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    adapter_key: String,
    choices: BTreeMap<String, String>,
    file: Option<PathBuf>,
}

/// Directory of the tuning cache, from the environment.
#[cfg(not(target_arch = "wasm32"))]
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("WGPU_INFER_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("wgpu-infer"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("wgpu-infer"))
}

type AllChoices = BTreeMap<String, BTreeMap<String, String>>;

impl TuneCache {
    /// The cache of `info`'s adapter, with the choices persisted by earlier processes.
    pub(crate) fn load(info: &wgpu::AdapterInfo, portable: bool) -> TuneCache {
        let mut adapter_key = format!(
            "{} | {:?} | {} {}",
            info.name, info.backend, info.driver, info.driver_info
        );
        // The portable variant set has its own candidates: keep its choices apart.
        if portable {
            adapter_key.push_str(" | portable");
        }
        #[cfg(not(target_arch = "wasm32"))]
        let file = cache_dir().map(|d| d.join("tune.json"));
        #[cfg(target_arch = "wasm32")]
        let file: Option<PathBuf> = None;
        let choices = file
            .as_ref()
            .and_then(|f| read_all(f).remove(&adapter_key))
            .unwrap_or_default();
        TuneCache {
            adapter_key,
            choices,
            file,
        }
    }

    /// The cached choice for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.choices.get(key).map(String::as_str)
    }

    /// Records a choice and persists it (best effort: a read-only home must not break
    /// inference).
    pub(crate) fn insert(&mut self, key: &str, choice: &str) {
        self.choices.insert(key.to_string(), choice.to_string());
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(f) = &self.file {
            let mut all = read_all(f);
            all.insert(self.adapter_key.clone(), self.choices.clone());
            if let (Some(dir), Ok(text)) = (f.parent(), serde_json::to_string_pretty(&all)) {
                if std::fs::create_dir_all(dir).is_ok() {
                    let tmp = f.with_extension(format!("tmp{}", std::process::id()));
                    if std::fs::write(&tmp, text).is_ok() {
                        let _ = std::fs::rename(&tmp, f);
                    }
                }
            }
        }
    }

    /// Every cached choice, sorted by key.
    pub fn entries(&self) -> Vec<(String, String)> {
        self.choices
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Where the choices are persisted, for messages.
    pub fn location(&self) -> String {
        self.file
            .as_ref()
            .map_or_else(|| "(in memory only)".into(), |p| p.display().to_string())
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn read_all(f: &std::path::Path) -> AllChoices {
    std::fs::read_to_string(f)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

#[cfg(target_arch = "wasm32")]
fn read_all(_f: &std::path::Path) -> AllChoices {
    AllChoices::new()
}
