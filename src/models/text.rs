//! Text input of encoders: a tokenizer truncating to the model's maximum length, padded token
//! batches, and length-sorted chunking (little padding per forward).

use crate::error::{Error, Result};
use tokenizers::{Encoding, Tokenizer};

/// Token ids of a padded batch (row-major [batch, seq]).
#[derive(Clone, Debug)]
pub struct TokenBatch {
    pub batch: usize,
    pub seq: usize,
    pub input_ids: Vec<u32>,
    pub token_type_ids: Vec<u32>,
    /// 1 for real tokens, 0 for padding.
    pub attention_mask: Vec<u32>,
}

impl TokenBatch {
    /// Number of real tokens in row `b`.
    pub fn len(&self, b: usize) -> usize {
        self.attention_mask[b * self.seq..(b + 1) * self.seq]
            .iter()
            .filter(|&&m| m != 0)
            .count()
    }

    /// Checks the batch against an encoder's sizes: every id inside the vocabulary, every token
    /// type inside the type vocabulary, no longer than the position table.
    pub fn check(&self, vocab: usize, type_vocab: usize, positions: usize) -> Result<()> {
        let n = self.batch * self.seq;
        let lens = [&self.input_ids, &self.token_type_ids, &self.attention_mask];
        if lens.iter().any(|v| v.len() != n) {
            return Err(Error::InvalidArgument(format!(
                "ids, token types and mask must each hold batch*seq = {n} values"
            )));
        }
        if self.seq > positions {
            return Err(Error::InvalidArgument(format!(
                "sequence of {} tokens exceeds max_position_embeddings {positions}",
                self.seq
            )));
        }
        let over = |v: &[u32], max: usize| v.iter().copied().find(|&i| i as usize >= max);
        if let Some(id) = over(&self.input_ids, vocab) {
            return Err(Error::InvalidArgument(format!(
                "token id {id} out of range for vocab_size {vocab}"
            )));
        }
        if let Some(t) = over(&self.token_type_ids, type_vocab) {
            return Err(Error::InvalidArgument(format!(
                "token type {t} out of range for type_vocab_size {type_vocab}"
            )));
        }
        Ok(())
    }

    /// Pads encodings to the longest one.
    pub fn pad(encs: &[Encoding]) -> Result<TokenBatch> {
        if encs.is_empty() {
            return Err(Error::InvalidArgument("no texts given".into()));
        }
        let seq = encs
            .iter()
            .map(|e| e.get_ids().len())
            .max()
            .unwrap_or(0)
            .max(1);
        let batch = encs.len();
        let mut inp = TokenBatch {
            batch,
            seq,
            input_ids: vec![0; batch * seq],
            token_type_ids: vec![0; batch * seq],
            attention_mask: vec![0; batch * seq],
        };
        for (b, e) in encs.iter().enumerate() {
            let n = e.get_ids().len();
            inp.input_ids[b * seq..b * seq + n].copy_from_slice(e.get_ids());
            inp.token_type_ids[b * seq..b * seq + n].copy_from_slice(e.get_type_ids());
            inp.attention_mask[b * seq..b * seq + n].fill(1);
        }
        Ok(inp)
    }
}

/// A tokenizer that truncates to `max_len` tokens (special tokens included), as
/// sentence-transformers does.
pub(crate) struct TextEncoder {
    tok: Tokenizer,
    max_len: usize,
}

impl TextEncoder {
    pub fn new(mut tok: Tokenizer, max_len: usize) -> Result<TextEncoder> {
        tok.with_truncation(Some(tokenizers::TruncationParams {
            max_length: max_len,
            ..Default::default()
        }))
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(TextEncoder { tok, max_len })
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tok
    }

    /// Encodings of `texts`; an empty list or a blank text is an error.
    pub fn encode(&self, texts: &[&str]) -> Result<Vec<Encoding>> {
        if texts.is_empty() {
            return Err(Error::InvalidArgument("no texts given".into()));
        }
        for (i, t) in texts.iter().enumerate() {
            if t.trim().is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "text {i} is empty (nothing to embed)"
                )));
            }
        }
        let bounded = texts
            .iter()
            .map(|t| bounded_prefix(&self.tok, t, self.max_len))
            .collect::<Result<Vec<&str>>>()?;
        let encs = tokenizing(|| self.tok.encode_batch(bounded, true))?;
        for (i, e) in encs.iter().enumerate() {
            // Only [CLS] [SEP] left: the tokenizer deleted the whole text.
            if e.get_special_tokens_mask().iter().all(|&m| m == 1) {
                return Err(Error::InvalidArgument(format!(
                    "text {i} has no tokens once tokenized (the tokenizer's normalizer removed \
                     all of it)"
                )));
            }
        }
        Ok(encs)
    }

    /// Encodings of sentence pairs ([CLS] a [SEP] b [SEP], token type 1 for b).
    pub fn encode_pairs(&self, pairs: &[(&str, &str)]) -> Result<Vec<Encoding>> {
        let mut inputs: Vec<tokenizers::EncodeInput> = Vec::with_capacity(pairs.len());
        for (a, b) in pairs {
            let a = bounded_prefix(&self.tok, a, self.max_len)?;
            let b = bounded_prefix(&self.tok, b, self.max_len)?;
            inputs.push((a.to_string(), b.to_string()).into());
        }
        tokenizing(|| self.tok.encode_batch(inputs, true))
    }

    /// Fails for the first text longer than `max_len` tokens (which encoding would truncate).
    pub fn check_lengths(&self, texts: &[&str]) -> Result<()> {
        for (i, e) in self.encode(texts)?.iter().enumerate() {
            if !e.get_overflowing().is_empty() {
                let chars = texts[i].chars().count();
                return Err(Error::InvalidArgument(format!(
                    "text {i} ({chars} characters) is longer than the model's maximum of {} \
                     tokens; it would be truncated",
                    self.max_len
                )));
            }
        }
        Ok(())
    }
}

/// A call into the tokenizers crate: its errors, and its panics on malformed tokenizers, as
/// [`Error::Tokenizer`].
pub(crate) fn tokenizing<T, E: std::fmt::Display>(
    f: impl FnOnce() -> std::result::Result<T, E>,
) -> Result<T> {
    match crate::contain::contain(f) {
        Ok(r) => r.map_err(|e| Error::Tokenizer(e.to_string())),
        Err(panic) => Err(Error::Tokenizer(format!("the tokenizer failed: {panic}"))),
    }
}

/// Bytes per token of `max_len` tokenized at first of an over-long text (English averages
/// 4-6 bytes per WordPiece or BPE token).
const BYTES_PER_TOKEN: usize = 16;

/// The start of `text` that tokenizes to the same first `max_len` tokens as the whole text,
/// found without tokenizing the whole text: a prefix cut at a whitespace is tokenized (without
/// special tokens), and it is enough once it yields more than `max_len` tokens; else a prefix
/// twice as long is tried, up to the whole text. A 20 MB line thus costs a few kilobytes of
/// tokenization, not gigabytes. The cut is made before a whitespace, where every Hugging Face
/// pre-tokenizer ends a word, so the words before it tokenize exactly as in the whole text;
/// only a prefix with no whitespace in its second half (one word of kilobytes) is cut mid-word.
pub(crate) fn bounded_prefix<'t>(
    tok: &Tokenizer,
    text: &'t str,
    max_len: usize,
) -> Result<&'t str> {
    let mut cap = max_len.saturating_mul(BYTES_PER_TOKEN).max(4096);
    while cap < text.len() {
        let prefix = cut_before_whitespace(text, cap);
        let enc = tokenizing(|| tok.encode(prefix, false))?;
        let tokens = enc.len()
            + enc
                .get_overflowing()
                .iter()
                .map(Encoding::len)
                .sum::<usize>();
        if tokens > max_len {
            return Ok(prefix);
        }
        cap = cap.saturating_mul(2);
    }
    Ok(text)
}

/// `text` cut to at most `cap` bytes: before the last whitespace in the second half of that
/// window, else at the last character boundary.
fn cut_before_whitespace(text: &str, cap: usize) -> &str {
    let mut end = cap.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let window = &text[..end];
    match window
        .char_indices()
        .rev()
        .take_while(|&(i, _)| i >= end / 2)
        .find(|(_, c)| c.is_whitespace())
    {
        Some((i, _)) => &text[..i],
        None => window,
    }
}

/// Indices of `encs` in chunks of similar lengths, longest first: a chunk ends where a text is
/// under half the chunk's longest, or at `max_batch` texts.
pub(crate) fn sorted_chunks(encs: &[Encoding], max_batch: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..encs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(encs[i].get_ids().len()));
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let longest = encs[order[start]].get_ids().len();
        let mut end = start + 1;
        while end < order.len()
            && end - start < max_batch
            && encs[order[end]].get_ids().len() * 2 >= longest
        {
            end += 1;
        }
        chunks.push(order[start..end].to_vec());
        start = end;
    }
    chunks
}
