//! A text generator of either decoder family — GPT-2 or a Llama-architecture model (Llama,
//! Qwen2, SmolLM) — chosen by the folder's config.json, behind one API for the layers that
//! only generate (the CLI's `generate` and `chat`, the server's completions).

use super::files::ModelFiles;
use super::generate::{GenerateOptions, Generation, TokenEvent};
use super::gpt2::Gpt2;
use super::llama::Llama;
use super::options::LoadOptions;
use super::{parse_config, ModelKind};
use crate::error::{Error, Result};
use crate::graph::Backend;

/// A loaded GPT-2 or Llama-architecture decoder. `Send + Sync`.
pub enum CausalLm {
    Gpt2(Gpt2),
    Llama(Llama),
}

impl From<Gpt2> for CausalLm {
    fn from(m: Gpt2) -> Self {
        CausalLm::Gpt2(m)
    }
}

impl From<Llama> for CausalLm {
    fn from(m: Llama) -> Self {
        CausalLm::Llama(m)
    }
}

impl CausalLm {
    /// Loads the folder as a Llama-architecture model when its config.json says `llama` /
    /// `qwen2`, otherwise as GPT-2 (whose loader names any other family it finds).
    pub fn from_files(backend: Backend, files: &ModelFiles, opts: &LoadOptions) -> Result<Self> {
        let kind = files
            .text("config.json")?
            .and_then(|t| parse_config(&t).ok())
            .map(|c| c.kind());
        Ok(match kind {
            Some(ModelKind::Llama) => Llama::from_files(backend, files, opts)?.into(),
            _ => Gpt2::from_files(backend, files, opts)?.into(),
        })
    }

    pub fn name(&self) -> &str {
        match self {
            CausalLm::Gpt2(m) => m.name(),
            CausalLm::Llama(m) => m.name(),
        }
    }
    pub fn backend(&self) -> &Backend {
        match self {
            CausalLm::Gpt2(m) => m.backend(),
            CausalLm::Llama(m) => m.backend(),
        }
    }
    pub fn warnings(&self) -> &[String] {
        match self {
            CausalLm::Gpt2(m) => m.warnings(),
            CausalLm::Llama(m) => m.warnings(),
        }
    }
    /// The model's tokenizer (a GPT-2 built from weights alone may have none).
    pub fn tokenizer(&self) -> Option<&tokenizers::Tokenizer> {
        match self {
            CausalLm::Gpt2(m) => m.tokenizer(),
            CausalLm::Llama(m) => m.tokenizer(),
        }
    }
    /// Positions a generation (prompt + new tokens) may use.
    pub fn context(&self) -> usize {
        match self {
            CausalLm::Gpt2(m) => m.config().n_positions,
            CausalLm::Llama(m) => m.context(),
        }
    }
    pub fn vocab_size(&self) -> usize {
        match self {
            CausalLm::Gpt2(m) => m.config().vocab_size,
            CausalLm::Llama(m) => m.config().vocab_size,
        }
    }
    /// The token ids generation stops at.
    pub fn eos_ids(&self) -> Vec<u32> {
        match self {
            CausalLm::Gpt2(m) => m.config().eos_token_id.into_iter().collect(),
            CausalLm::Llama(m) => m.eos_ids().to_vec(),
        }
    }
    /// Device memory of the largest idle generation session and its last step's dispatches.
    pub fn memory_and_dispatches(&self) -> (u64, usize) {
        match self {
            CausalLm::Gpt2(m) => m.memory_and_dispatches(),
            CausalLm::Llama(m) => m.memory_and_dispatches(),
        }
    }
    /// Kernels of the last decode step.
    pub fn kernels(&self) -> Vec<String> {
        match self {
            CausalLm::Gpt2(m) => m.kernels(),
            CausalLm::Llama(m) => m.kernels(),
        }
    }

    /// Tokenizes `text` as a prompt: no special tokens added (a chat template writes its
    /// own), bounded by the context before the whole text is tokenized.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        let tok = self.tokenizer().ok_or_else(|| {
            Error::InvalidArgument(format!("model '{}' has no tokenizer", self.name()))
        })?;
        super::generate::tokenize_prompt(tok, text, self.context())
    }

    /// Generates after `prompt` (ids), streaming each new token to `on_token` (return
    /// `false` to stop); see [`Gpt2::generate_ids_stream`] and [`Llama::generate_ids_stream`].
    pub async fn generate_ids_stream(
        &self,
        prompt: &[u32],
        opts: &GenerateOptions,
        on_token: impl FnMut(&TokenEvent) -> bool,
    ) -> Result<Generation> {
        match self {
            CausalLm::Gpt2(m) => m.generate_ids_stream(prompt, opts, on_token).await,
            CausalLm::Llama(m) => m.generate_ids_stream(prompt, opts, on_token).await,
        }
    }
}
