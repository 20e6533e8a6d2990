//! Cross-encoder reranking, shared by encoder families with a one-label classification head:
//! (query, document) pairs tokenized as [CLS] query [SEP] doc [SEP], scored in length-sorted
//! chunks, and ranked best first (sigmoid of the logit, TEI's default, unless raw).

use super::sentence::chunked;
use super::text::{TextEncoder, TokenBatch};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::future::Future;

/// A model with `labels` classification labels (None: no head) can rerank only with one.
pub fn check_head(name: &str, labels: Option<usize>) -> Result<()> {
    match labels {
        Some(1) => Ok(()),
        other => Err(Error::InvalidArgument(format!(
            "{name} is not a cross-encoder (a sequence-classification model with one label); \
             it has {}",
            match other {
                Some(n) => format!("{n} labels"),
                None => "no classification head".into(),
            }
        ))),
    }
}

/// The logit of each `(query, doc)` pair in `docs` order; `forward` maps a padded chunk to its
/// [rows, 1] logits. Pairs longer than the encoder's maximum are cut (longest first, as the
/// tokenizer truncates) when `truncate`, else refused.
pub(crate) async fn scores<Fut>(
    text: &TextEncoder,
    query: &str,
    docs: &[&str],
    truncate: bool,
    max_batch: usize,
    forward: impl Fn(TokenBatch) -> Fut,
) -> Result<Vec<f32>>
where
    Fut: Future<Output = Result<Tensor>>,
{
    if docs.is_empty() {
        return Err(Error::InvalidArgument("no documents to rank".into()));
    }
    if query.trim().is_empty() || docs.iter().any(|d| d.trim().is_empty()) {
        return Err(Error::InvalidArgument(
            "the query and every document must be non-empty".into(),
        ));
    }
    let pairs: Vec<(&str, &str)> = docs.iter().map(|d| (query, *d)).collect();
    let encs = text.encode_pairs(&pairs)?;
    if !truncate {
        if let Some(i) = encs.iter().position(|e| !e.get_overflowing().is_empty()) {
            return Err(Error::InvalidArgument(format!(
                "query + document {i} is longer than the model's maximum of {} tokens",
                text.max_len()
            )));
        }
    }
    let mut scores = vec![0.0f32; docs.len()];
    chunked(&encs, max_batch, forward, |_, logits, idx| {
        let l = logits.as_f32()?;
        for (row, &i) in idx.iter().enumerate() {
            scores[i] = l[row];
        }
        Ok(())
    })
    .await?;
    Ok(scores)
}

/// One ranked document.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Ranked {
    pub index: usize,
    pub score: f32,
}

/// Documents best first (ties keep document order): score = sigmoid(logit), or the logit
/// itself when `raw`.
pub fn rank(logits: &[f32], raw: bool) -> Vec<Ranked> {
    let mut out: Vec<Ranked> = logits
        .iter()
        .enumerate()
        .map(|(index, &l)| Ranked {
            index,
            score: if raw { l } else { 1.0 / (1.0 + (-l).exp()) },
        })
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    out
}
