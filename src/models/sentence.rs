//! sentence-transformers folders: pooling (mean, CLS, max), Normalize and max_seq_length from
//! modules.json, 1_Pooling/config.json and sentence_bert_config.json; and the pooling itself.
//! Shared by every text encoder family.

use super::files::ModelFiles;
use super::text::{sorted_chunks, TextEncoder, TokenBatch};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use serde::Deserialize;
use std::future::Future;
use tokenizers::Encoding;

/// How token vectors become one sentence vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// Mean over non-padding tokens.
    Mean,
    /// The first ([CLS]) token.
    Cls,
    /// Elementwise max over non-padding tokens.
    Max,
}

impl std::str::FromStr for Pooling {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mean" => Ok(Pooling::Mean),
            "cls" => Ok(Pooling::Cls),
            "max" => Ok(Pooling::Max),
            other => Err(Error::InvalidArgument(format!(
                "unknown pooling '{other}' (mean, cls, max)"
            ))),
        }
    }
}

#[derive(Deserialize)]
struct StModule {
    #[serde(default)]
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct StPooling {
    #[serde(default)]
    pooling_mode: Option<String>,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

#[derive(Deserialize)]
struct StConfig {
    #[serde(default)]
    max_seq_length: Option<usize>,
}

/// What a sentence-transformers folder says about embedding.
#[derive(Clone, Debug, Default)]
pub struct SentenceConfig {
    /// The Pooling module's mode, if the folder has one.
    pub pooling: Option<Pooling>,
    /// A Normalize module follows pooling.
    pub normalize: bool,
    /// `max_seq_length` of sentence_bert_config.json.
    pub max_seq_length: Option<usize>,
}

impl SentenceConfig {
    /// Reads the sentence-transformers files of `files`, if present.
    pub fn read(files: &ModelFiles) -> Result<SentenceConfig> {
        let modules: Option<Vec<StModule>> = files.json("modules.json")?;
        let is_st = modules.is_some();
        let normalize = modules
            .iter()
            .flatten()
            .any(|m| m.kind.ends_with("Normalize"));
        let pool_name = Self::pooling_file(files)?;
        let pooling = match files.json::<StPooling>(&pool_name)? {
            Some(p) => p.mode().map_err(|msg| Error::Config {
                path: files.path(&pool_name),
                msg,
            })?,
            None => None,
        };
        let st_name = "sentence_bert_config.json";
        let max_seq_length = files
            .json::<StConfig>(st_name)?
            .and_then(|c| c.max_seq_length);
        if max_seq_length == Some(0) {
            return Err(Error::Config {
                path: files.path(st_name),
                msg: "max_seq_length is 0; it must be at least 1 (sentence-transformers \
                      truncates to it)"
                    .into(),
            });
        }
        Ok(SentenceConfig {
            pooling,
            normalize: is_st && normalize,
            max_seq_length,
        })
    }
}

impl SentenceConfig {
    /// The Pooling module's config file: `<path>/config.json` of the Pooling entry of
    /// modules.json, else `1_Pooling/config.json`. (A browser fetches this name after
    /// modules.json.)
    pub fn pooling_file(files: &ModelFiles) -> Result<String> {
        let modules: Option<Vec<StModule>> = files.json("modules.json")?;
        let dir = modules
            .iter()
            .flatten()
            .rfind(|m| m.kind.ends_with("Pooling") && !m.path.is_empty())
            .map_or("1_Pooling", |m| m.path.trim_end_matches('/'));
        Ok(format!("{dir}/config.json"))
    }
}

impl StPooling {
    /// The single pooling mode this config selects (None when it selects none).
    fn mode(&self) -> std::result::Result<Option<Pooling>, String> {
        if let Some(mode) = &self.pooling_mode {
            return mode
                .parse::<Pooling>()
                .map(Some)
                .map_err(|_| format!("unsupported pooling_mode '{mode}'"));
        }
        if self.pooling_mode_mean_sqrt_len_tokens {
            return Err("pooling_mode_mean_sqrt_len_tokens is not supported".into());
        }
        let modes = [
            (self.pooling_mode_mean_tokens, Pooling::Mean),
            (self.pooling_mode_cls_token, Pooling::Cls),
            (self.pooling_mode_max_tokens, Pooling::Max),
        ];
        let on: Vec<Pooling> = modes.iter().filter(|m| m.0).map(|m| m.1).collect();
        match on.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            _ => Err("several pooling modes at once (concatenation) are not supported".into()),
        }
    }
}

/// Divides `v` by its L2 norm (at least 1e-12), as `torch.nn.functional.normalize` does in
/// sentence-transformers' Normalize module.
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v
        .iter()
        .map(|&x| (x as f64) * (x as f64))
        .sum::<f64>()
        .sqrt();
    let d = norm.max(1e-12);
    for x in v.iter_mut() {
        *x = (*x as f64 / d) as f32;
    }
}

/// Pools [batch, seq, hidden] token vectors into one vector per row (mask-aware).
pub fn pool(
    hidden: &Tensor,
    input: &TokenBatch,
    pooling: Pooling,
    normalize: bool,
) -> Vec<Vec<f32>> {
    let h = *hidden.shape().last().unwrap();
    let v = hidden.as_f32().expect("f32 hidden states");
    (0..input.batch)
        .map(|b| {
            let rows = (0..input.seq).filter(|&j| input.attention_mask[b * input.seq + j] != 0);
            let tok = |j: usize| &v[(b * input.seq + j) * h..(b * input.seq + j + 1) * h];
            let mut out = match pooling {
                Pooling::Cls => tok(0).to_vec(),
                Pooling::Mean => {
                    let mut acc = vec![0.0f64; h];
                    let mut n = 0usize;
                    for j in rows {
                        for (a, &x) in acc.iter_mut().zip(tok(j)) {
                            *a += x as f64;
                        }
                        n += 1;
                    }
                    acc.iter().map(|&a| (a / n.max(1) as f64) as f32).collect()
                }
                Pooling::Max => {
                    let mut acc = vec![f32::NEG_INFINITY; h];
                    for j in rows {
                        for (a, &x) in acc.iter_mut().zip(tok(j)) {
                            *a = a.max(x);
                        }
                    }
                    acc
                }
            };
            if normalize {
                l2_normalize(&mut out);
            }
            out
        })
        .collect()
}

/// Runs `forward` (padded chunk → last hidden state [batch, seq, hidden]) over `texts` in
/// length-sorted chunks (little padding), calling `each` with every chunk's input, output and
/// the original index of each of its rows.
pub(crate) async fn chunked<Fut>(
    encs: &[Encoding],
    max_batch: usize,
    forward: impl Fn(TokenBatch) -> Fut,
    mut each: impl FnMut(&TokenBatch, &Tensor, &[usize]) -> Result<()>,
) -> Result<()>
where
    Fut: Future<Output = Result<Tensor>>,
{
    if encs.is_empty() {
        return Err(Error::InvalidArgument("no texts given".into()));
    }
    for idx in sorted_chunks(encs, max_batch) {
        let chunk: Vec<_> = idx.iter().map(|&i| encs[i].clone()).collect();
        let input = TokenBatch::pad(&chunk)?;
        let hidden = forward(input.clone()).await?;
        each(&input, &hidden, &idx)?;
    }
    Ok(())
}

/// Token vectors per text: a [tokens, hidden] tensor each (special tokens included).
pub(crate) async fn encode<Fut>(
    text: &TextEncoder,
    texts: &[&str],
    max_batch: usize,
    forward: impl Fn(TokenBatch) -> Fut,
) -> Result<Vec<Tensor>>
where
    Fut: Future<Output = Result<Tensor>>,
{
    let mut result: Vec<Option<Tensor>> = vec![None; texts.len()];
    chunked(
        &text.encode(texts)?,
        max_batch,
        forward,
        |input, hidden, idx| {
            let h = *hidden.shape().last().unwrap_or(&1);
            let v = hidden.as_f32()?;
            for (b, &i) in idx.iter().enumerate() {
                let n = input.len(b);
                let row = &v[b * input.seq * h..(b * input.seq + n) * h];
                result[i] = Some(Tensor::from_f32(&[n, h], row.to_vec())?);
            }
            Ok(())
        },
    )
    .await?;
    Ok(result.into_iter().flatten().collect())
}

/// Sentence embeddings of encoded texts: pooled and, if `normalize`, L2-normalised.
pub(crate) async fn embed<Fut>(
    encs: &[Encoding],
    max_batch: usize,
    pooling: Pooling,
    normalize: bool,
    forward: impl Fn(TokenBatch) -> Fut,
) -> Result<Vec<Vec<f32>>>
where
    Fut: Future<Output = Result<Tensor>>,
{
    let mut result: Vec<Vec<f32>> = vec![Vec::new(); encs.len()];
    chunked(encs, max_batch, forward, |input, hidden, idx| {
        for (v, &i) in pool(hidden, input, pooling, normalize).into_iter().zip(idx) {
            result[i] = v;
        }
        Ok(())
    })
    .await?;
    Ok(result)
}
