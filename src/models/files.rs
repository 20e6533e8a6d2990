//! A model folder as named files: held in memory (file name → bytes, e.g. what a browser
//! fetched), or a directory on disk read on demand. Every model loads from this; the path
//! loaders are the thin [`ModelFiles::open`] over it.

use crate::error::{Error, Result};
use crate::files::Bytes;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

enum Source {
    Memory(BTreeMap<String, Bytes>),
    #[cfg(not(target_arch = "wasm32"))]
    Dir,
}

/// Largest JSON / text file of a model folder read (tokenizer.json of large vocabularies is
/// tens of MiB).
pub const MAX_TEXT_FILE: u64 = 256 << 20;

/// The files of one model folder (`config.json`, `model.safetensors`, `tokenizer.json`,
/// `1_Pooling/config.json`, ...).
pub struct ModelFiles {
    /// The folder: a directory, or any label for in-memory files (a URL, a name). Errors name
    /// files as `root/name`.
    root: PathBuf,
    source: Source,
}

impl std::fmt::Debug for ModelFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ModelFiles({})", self.root.display())
    }
}

impl ModelFiles {
    /// An empty in-memory folder called `label`; add files with [`ModelFiles::insert`].
    pub fn new(label: impl Into<PathBuf>) -> ModelFiles {
        ModelFiles {
            root: label.into(),
            source: Source::Memory(BTreeMap::new()),
        }
    }

    /// Adds (or replaces) the file `name` (a path relative to the folder, `/`-separated).
    /// Does nothing on a folder opened from disk.
    pub fn insert(&mut self, name: impl Into<String>, bytes: impl Into<Bytes>) -> &mut Self {
        #[cfg_attr(target_arch = "wasm32", allow(irrefutable_let_patterns))]
        if let Source::Memory(m) = &mut self.source {
            m.insert(name.into(), bytes.into());
        }
        self
    }

    /// [`ModelFiles::insert`], by value.
    pub fn with(mut self, name: impl Into<String>, bytes: impl Into<Bytes>) -> Self {
        self.insert(name, bytes);
        self
    }

    /// A model directory on disk; files are read (or memory-mapped) when a loader asks.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(dir: impl AsRef<Path>) -> Result<ModelFiles> {
        let dir = dir.as_ref();
        if !dir.exists() {
            return Err(Error::Config {
                path: dir.to_path_buf(),
                msg: "model directory does not exist".into(),
            });
        }
        if !dir.is_dir() {
            return Err(Error::Config {
                path: dir.to_path_buf(),
                msg: "expected a model directory (config.json, model.safetensors, ...)".into(),
            });
        }
        Ok(ModelFiles {
            root: dir.to_path_buf(),
            source: Source::Dir,
        })
    }

    /// The folder (directory or label).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `name` lives, for messages.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The file `name`, if the folder has it. Names are relative and stay inside the folder (a
    /// config naming `../x` is refused).
    pub fn get(&self, name: &str) -> Result<Option<Bytes>> {
        let inside = Path::new(name)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !inside {
            return Err(Error::Config {
                path: self.path(name),
                msg: "a file name in a model folder must stay inside the folder".into(),
            });
        }
        match &self.source {
            Source::Memory(m) => Ok(m.get(name).cloned()),
            #[cfg(not(target_arch = "wasm32"))]
            Source::Dir => {
                let p = self.path(name);
                self.check_subfolder(name, &p)?;
                match std::fs::metadata(&p) {
                    // A directory, FIFO or device is refused (files::read says so).
                    Ok(_) => crate::files::read(&p).map(Some),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Error::io(&p, e)),
                }
            }
        }
    }

    /// A name in a subfolder (`1_Pooling/config.json`, from modules.json) must resolve inside
    /// the folder: a subfolder that is a symlink to elsewhere is refused. Files themselves
    /// may be symlinks (a hub snapshot links its files to the cache's blobs).
    #[cfg(not(target_arch = "wasm32"))]
    fn check_subfolder(&self, name: &str, p: &Path) -> Result<()> {
        let parent = match p.parent() {
            Some(d) if Path::new(name).components().count() > 1 && d.exists() => d,
            _ => return Ok(()),
        };
        let root = std::fs::canonicalize(&self.root).map_err(|e| Error::io(&self.root, e))?;
        let real = std::fs::canonicalize(parent).map_err(|e| Error::io(parent, e))?;
        if !real.starts_with(&root) {
            return Err(Error::Config {
                path: p.to_path_buf(),
                msg: format!(
                    "its folder resolves to {}, outside the model folder {}",
                    real.display(),
                    root.display()
                ),
            });
        }
        Ok(())
    }

    /// The file `name`, or a typed error saying that `what` is missing.
    pub fn require(&self, name: &str, what: &str) -> Result<Bytes> {
        self.get(name)?.ok_or_else(|| Error::Config {
            path: self.path(name),
            msg: format!("missing {what}"),
        })
    }

    /// The file `name` as UTF-8 text, if present (at most [`MAX_TEXT_FILE`] bytes).
    pub fn text(&self, name: &str) -> Result<Option<String>> {
        match self.get(name)? {
            Some(b) if b.len() as u64 > MAX_TEXT_FILE => Err(Error::Config {
                path: self.path(name),
                msg: format!(
                    "{} bytes is over the {MAX_TEXT_FILE}-byte limit for a text file",
                    b.len()
                ),
            }),
            Some(b) => String::from_utf8(b.to_vec())
                .map(Some)
                .map_err(|_| Error::Config {
                    path: self.path(name),
                    msg: "not UTF-8 text".into(),
                }),
            None => Ok(None),
        }
    }

    /// The JSON file `name` parsed as `T`, if present; parse errors name the file, line and
    /// field.
    pub fn json<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        match self.text(name)? {
            Some(t) => serde_json::from_str(&t)
                .map(Some)
                .map_err(|e| Error::Config {
                    path: self.path(name),
                    msg: format!("invalid JSON for this model: {e}"),
                }),
            None => Ok(None),
        }
    }

    /// A display name: the folder name, or `org/name` for a Hugging Face cache snapshot
    /// (`.../models--org--name/snapshots/<commit>`).
    pub fn name(&self) -> String {
        #[cfg(not(target_arch = "wasm32"))]
        let dir = std::fs::canonicalize(&self.root).unwrap_or_else(|_| self.root.clone());
        #[cfg(target_arch = "wasm32")]
        let dir = self.root.clone();
        let parts: Vec<String> = dir
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if let [.., repo, snaps, _commit] = parts.as_slice() {
            if snaps == "snapshots" {
                if let Some(id) = repo.strip_prefix("models--") {
                    if let Some((org, name)) = id.split_once("--") {
                        return format!("{org}/{name}");
                    }
                }
            }
        }
        dir.file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string())
    }

    /// Identity of the file `name` for the loaded-model cache: the canonical path, size and
    /// modification time on disk; the buffer's identity in memory.
    #[cfg_attr(target_arch = "wasm32", allow(unused_variables))]
    pub(crate) fn identity(&self, name: &str, bytes: &Bytes) -> FileIdentity {
        match &self.source {
            Source::Memory(_) => FileIdentity::Memory(bytes.id()),
            #[cfg(not(target_arch = "wasm32"))]
            Source::Dir => {
                let p = self.path(name);
                let meta = std::fs::metadata(&p).ok();
                FileIdentity::Disk {
                    path: std::fs::canonicalize(&p).unwrap_or(p),
                    len: bytes.len() as u64,
                    modified: meta.and_then(|m| m.modified().ok()),
                }
            }
        }
    }
}

/// See [`ModelFiles::identity`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum FileIdentity {
    Memory(u64),
    #[cfg(not(target_arch = "wasm32"))]
    Disk {
        path: PathBuf,
        len: u64,
        modified: Option<std::time::SystemTime>,
    },
}
