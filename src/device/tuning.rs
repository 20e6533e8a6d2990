//! The tuning cache: kernel-variant choices per adapter, keyed by an op-defined string (for
//! example `matmul:m1:w:k768:n4096:tiled/reg/texture`), each with the times it was chosen on.
//! A leaf: it stores and persists choices; the tuner that measures them lives in the graph
//! layer and the tunables beside their ops.
//!
//! Native builds persist choices in `$WGPU_INFER_CACHE_DIR/tune.json` (default
//! `$XDG_CACHE_HOME/wgpu-infer` or `~/.cache/wgpu-infer`), keyed by adapter name and driver;
//! the location is read once, when the device opens. In the browser the cache lives in memory.
//! Files of an older format (choices without times) are ignored, so those choices are
//! measured again.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// One tuned choice and the measurements behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TunedChoice {
    /// The chosen variant.
    pub variant: String,
    /// Median seconds of every candidate that ran on the stand-in problem (a candidate
    /// abandoned after one clearly slower run has that run).
    pub secs: BTreeMap<String, f64>,
    /// How times were taken: `gpu timestamps` or `wall clock`.
    pub method: String,
    /// Why this variant: `default`, `clearly faster than <default>`, `only candidate`, ...
    pub reason: String,
}

impl TunedChoice {
    /// The stored time of the chosen variant.
    pub fn chosen_secs(&self) -> Option<f64> {
        self.secs.get(&self.variant).copied()
    }
}

/// Cached kernel choices of one adapter.
#[derive(Debug, Default)]
pub struct TuneCache {
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    adapter_key: String,
    choices: BTreeMap<String, TunedChoice>,
    /// Keys whose cached choice was re-timed (or measured) in this process.
    validated: BTreeSet<String>,
    /// The fixed submit + readback seconds of a trivial plan, measured once per process.
    overhead: Option<f64>,
    file: Option<PathBuf>,
}

/// The file's layout: `{"version": 2, "adapters": {adapter: {key: choice}}}`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct TuneFile {
    version: u32,
    adapters: BTreeMap<String, BTreeMap<String, TunedChoice>>,
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
const VERSION: u32 = 2;

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
            .and_then(|f| read_file(f).adapters.remove(&adapter_key))
            .unwrap_or_default();
        TuneCache {
            adapter_key,
            choices,
            validated: BTreeSet::new(),
            overhead: None,
            file,
        }
    }

    /// The cached choice for `key`.
    pub fn get(&self, key: &str) -> Option<&TunedChoice> {
        self.choices.get(key)
    }

    /// The cached variant for `key`.
    pub fn variant(&self, key: &str) -> Option<&str> {
        self.choices.get(key).map(|c| c.variant.as_str())
    }

    /// Whether `key`'s choice was measured or re-timed in this process.
    pub fn is_validated(&self, key: &str) -> bool {
        self.validated.contains(key)
    }

    /// The fixed per-run overhead measured in this process, if any.
    pub fn overhead(&self) -> Option<f64> {
        self.overhead
    }

    pub(crate) fn set_overhead(&mut self, secs: f64) {
        self.overhead = Some(secs);
    }

    pub(crate) fn mark_validated(&mut self, key: &str) {
        self.validated.insert(key.to_string());
    }

    /// Records a freshly measured choice and persists it (best effort: a read-only home must
    /// not break inference).
    pub(crate) fn insert(&mut self, key: &str, choice: TunedChoice) {
        self.choices.insert(key.to_string(), choice);
        self.validated.insert(key.to_string());
        self.save();
    }

    /// Forgets every choice of this adapter, here and in the file.
    pub fn reset(&mut self) {
        self.choices.clear();
        self.validated.clear();
        self.save();
    }

    fn save(&self) {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(f) = &self.file {
            let mut all = read_file(f);
            all.version = VERSION;
            if self.choices.is_empty() {
                all.adapters.remove(&self.adapter_key);
            } else {
                all.adapters
                    .insert(self.adapter_key.clone(), self.choices.clone());
            }
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
    pub fn entries(&self) -> Vec<(String, TunedChoice)> {
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

/// The file's choices; a missing, unreadable or older-format file counts as empty.
#[cfg(not(target_arch = "wasm32"))]
fn read_file(f: &std::path::Path) -> TuneFile {
    std::fs::read_to_string(f)
        .ok()
        .and_then(|t| serde_json::from_str::<TuneFile>(&t).ok())
        .filter(|t| t.version == VERSION)
        .unwrap_or_default()
}

#[cfg(target_arch = "wasm32")]
fn read_file(_f: &std::path::Path) -> TuneFile {
    TuneFile::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_or_broken_files_count_as_empty() {
        let dir = std::env::temp_dir().join(format!("wgpu-infer-tune-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("tune.json");
        // The version-1 layout: adapter -> key -> variant name, no times.
        std::fs::write(
            &f,
            r#"{"llvmpipe | Vulkan | x": {"matmul:m1:w:tiled/reg/texture": "reg"}}"#,
        )
        .unwrap();
        assert!(read_file(&f).adapters.is_empty());
        std::fs::write(&f, "not json").unwrap();
        assert!(read_file(&f).adapters.is_empty());
        let mut cache = TuneCache {
            adapter_key: "a".into(),
            file: Some(f.clone()),
            ..Default::default()
        };
        let choice = TunedChoice {
            variant: "texture".into(),
            secs: BTreeMap::from([("texture".into(), 0.002), ("reg".into(), 0.03)]),
            method: "gpu timestamps".into(),
            reason: "default".into(),
        };
        cache.insert("k", choice.clone());
        assert!(cache.is_validated("k"));
        let back = read_file(&f);
        assert_eq!(back.version, VERSION);
        assert_eq!(back.adapters["a"]["k"], choice);
        assert_eq!(choice.chosen_secs(), Some(0.002));
        cache.reset();
        assert!(cache.get("k").is_none() && !cache.is_validated("k"));
        assert!(read_file(&f).adapters.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
