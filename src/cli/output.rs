//! Output files the CLI writes (`detect --out`, `bench --json`): checked before any work runs,
//! written to a fresh temporary file in the target directory (created with `O_EXCL` under a
//! random name, so it never follows a planted symlink and concurrent runs never share it),
//! renamed over the target atomically, and removed on any error.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use wgpu_infer::{Error, Result};

/// A checked output path.
pub struct OutputPath {
    path: PathBuf,
    dir: PathBuf,
}

fn bad(flag: &str, path: &Path, why: &str) -> Error {
    Error::InvalidArgument(format!("{flag} {}: {why}", path.display()))
}

impl OutputPath {
    /// Checks `path` as the target of `flag` before anything runs: its directory exists, it is
    /// not a directory, and it is none of `inputs` (through symlinks and `..` alike).
    pub fn check(flag: &str, path: &Path, inputs: &[&Path]) -> Result<OutputPath> {
        let name = match path.file_name() {
            Some(n) => n,
            None => return Err(bad(flag, path, "not a file name")),
        };
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir_real = std::fs::canonicalize(&dir)
            .map_err(|_| bad(flag, path, "its directory does not exist"))?;
        if !dir_real.is_dir() {
            return Err(bad(flag, path, "its parent is not a directory"));
        }
        if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
            return Err(bad(flag, path, "is a directory"));
        }
        // The path as named (the rename replaces a symlink itself) and what it points to.
        let mut targets = vec![dir_real.join(name)];
        if let Ok(t) = std::fs::canonicalize(path) {
            targets.push(t);
        }
        for input in inputs {
            if let Ok(i) = std::fs::canonicalize(input) {
                if targets.contains(&i) {
                    return Err(bad(
                        flag,
                        path,
                        &format!("is the input {}; choose another path", input.display()),
                    ));
                }
            }
        }
        Ok(OutputPath {
            path: path.to_path_buf(),
            dir,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the file through `write` into a fresh temporary file next to it, then renames
    /// it into place; on any error nothing is left behind and the target is untouched.
    pub fn write(
        &self,
        write: impl FnOnce(&mut BufWriter<&mut std::fs::File>) -> Result<()>,
    ) -> Result<()> {
        let name = self.path.file_name().unwrap_or_default().to_string_lossy();
        let prefix = format!(".{name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".partial");
        #[cfg(unix)]
        {
            // The mode a plain create would give (0666 less the umask), not tempfile's 0600.
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let mut tmp = builder
            .tempfile_in(&self.dir)
            .map_err(|e| Error::io(&self.path, e))?;
        {
            let mut w = BufWriter::new(tmp.as_file_mut());
            write(&mut w)?;
            w.flush().map_err(|e| Error::io(&self.path, e))?;
        }
        tmp.as_file()
            .sync_all()
            .map_err(|e| Error::io(&self.path, e))?;
        tmp.persist(&self.path)
            .map_err(|e| Error::io(&self.path, e.error))?;
        Ok(())
    }
}
