//! PyTorch as a peer process of `wgpu-infer bench --torch PYTHON`: tools/bench_torch.py in its
//! `serve` mode, asked for one repetition of a workload at a time so that the bench can
//! alternate PyTorch's repetitions with its own (a burst of load on the machine then hits both,
//! instead of whichever ran in that minute).
//!
//! Protocol (JSON lines): the peer first prints `{"ready": true, "threads": N}`; then each
//! request `{"model", "workload", "reps"}` gets `{"secs": [...], "items", "unit", "threads"}` (seconds
//! per call, one per repetition, and the items per call; the first request of a workload also runs a warm-up call) or
//! `{"error": message}`.

use serde::Deserialize;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use wgpu_infer::{Error, Result};

pub struct TorchPeer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    python: PathBuf,
    pub threads: usize,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    secs: Vec<f64>,
    #[serde(default)]
    items: f64,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    ready: bool,
    #[serde(default)]
    threads: usize,
}

impl TorchPeer {
    /// Starts tools/bench_torch.py serve under `python` with `threads` torch threads and waits
    /// until it is ready.
    pub fn spawn(python: &Path, threads: usize) -> Result<TorchPeer> {
        let script = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tools/bench_torch.py"));
        let mut child = Command::new(python)
            .arg(script)
            .arg("serve")
            .arg("--threads")
            .arg(threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(python, e))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut peer = TorchPeer {
            child,
            stdin,
            stdout,
            python: python.to_path_buf(),
            threads,
        };
        let hello = peer.read()?;
        if !hello.ready {
            return Err(peer.failed("did not announce itself ready"));
        }
        peer.threads = hello.threads;
        Ok(peer)
    }

    fn failed(&self, what: &str) -> Error {
        Error::InvalidArgument(format!(
            "{} tools/bench_torch.py serve {what}",
            self.python.display()
        ))
    }

    fn read(&mut self) -> Result<Answer> {
        let mut line = String::new();
        let n = self
            .stdout
            .read_line(&mut line)
            .map_err(|e| Error::io(&self.python, e))?;
        if n == 0 {
            return Err(self.failed("exited (its stderr above says why)"));
        }
        serde_json::from_str(&line)
            .map_err(|e| self.failed(&format!("answered something unexpected ({e}): {line}")))
    }

    /// `reps` timed repetitions of PyTorch's `workload` of `model`: seconds per call each, and
    /// the items (sentences, tokens, images) one call processes.
    pub fn time(&mut self, model: &str, workload: &str, reps: usize) -> Result<(Vec<f64>, f64)> {
        let req = serde_json::json!({"model": model, "workload": workload, "reps": reps});
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| Error::InvalidArgument("the PyTorch peer is closed".into()))?;
        writeln!(stdin, "{req}")
            .and_then(|_| stdin.flush())
            .map_err(|e| Error::io(&self.python, e))?;
        let a = self.read()?;
        match a.error {
            Some(e) => Err(self.failed(&format!("failed on {model} / {workload}: {e}"))),
            None if a.secs.len() != reps => Err(self.failed(&format!(
                "returned {} timings for {reps} repetitions",
                a.secs.len()
            ))),
            None => Ok((a.secs, a.items)),
        }
    }
}

impl Drop for TorchPeer {
    fn drop(&mut self) {
        // EOF on stdin ends the peer's loop.
        self.stdin.take();
        let _ = self.child.wait();
    }
}
