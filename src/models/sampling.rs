//! Next-token choice: greedy, or sampling with temperature, top-k and top-p from a seeded RNG.

use crate::error::{Error, Result};

/// How to pick the next token.
#[derive(Clone, Debug)]
pub struct Sampling {
    /// 0 = greedy (argmax). Otherwise logits are divided by it before softmax.
    pub temperature: f32,
    /// Keep only the k most likely tokens.
    pub top_k: Option<usize>,
    /// Keep the smallest set of most likely tokens whose probability reaches p, in (0, 1].
    pub top_p: Option<f32>,
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 0.0,
            top_k: None,
            top_p: None,
            seed: 0,
        }
    }
}

impl Sampling {
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(Error::InvalidArgument(format!(
                "temperature must be a finite number >= 0, got {}",
                self.temperature
            )));
        }
        if let Some(p) = self.top_p {
            if !(p > 0.0 && p <= 1.0) {
                return Err(Error::InvalidArgument(format!(
                    "top-p must be in (0, 1], got {p}"
                )));
            }
        }
        if self.top_k == Some(0) {
            return Err(Error::InvalidArgument("top-k must be at least 1".into()));
        }
        Ok(())
    }
}

pub use crate::rng::Rng;

/// Index of the largest logit (the first on ties, like `torch.argmax`).
pub fn argmax(logits: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best
}

/// Picks a token from `logits` under `s`.
pub fn sample(logits: &[f32], s: &Sampling, rng: &mut Rng) -> usize {
    if s.temperature == 0.0 {
        return argmax(logits);
    }
    // Candidates sorted by logit, best first (stable: lower index first on ties).
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    if let Some(k) = s.top_k {
        idx.truncate(k.max(1));
    }
    let t = s.temperature as f64;
    let m = logits[idx[0]] as f64;
    let mut probs: Vec<f64> = idx
        .iter()
        .map(|&i| ((logits[i] as f64 - m) / t).exp())
        .collect();
    let total: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= total);
    if let Some(p) = s.top_p {
        let mut cum = 0.0;
        let mut keep = probs.len();
        for (i, &q) in probs.iter().enumerate() {
            cum += q;
            if cum >= p as f64 {
                keep = i + 1;
                break;
            }
        }
        idx.truncate(keep);
        probs.truncate(keep);
        let total: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|q| *q /= total);
    }
    let r = rng.next_f64();
    let mut cum = 0.0;
    for (i, &q) in probs.iter().enumerate() {
        cum += q;
        if r < cum {
            return idx[i];
        }
    }
    *idx.last().unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_is_argmax_first_on_ties() {
        assert_eq!(argmax(&[0.0, 3.0, 3.0, -1.0]), 1);
        assert_eq!(
            sample(&[1.0, 2.0], &Sampling::default(), &mut Rng::new(1)),
            1
        );
    }

    #[test]
    fn top_k_one_is_greedy_and_top_p_restricts() {
        let logits = [0.1, 2.0, 1.9, -5.0];
        let s = Sampling {
            temperature: 1.0,
            top_k: Some(1),
            ..Default::default()
        };
        let mut rng = Rng::new(3);
        for _ in 0..50 {
            assert_eq!(sample(&logits, &s, &mut rng), 1);
        }
        // top-p 0.5 keeps only the best token here (its probability is ~0.5).
        let s = Sampling {
            temperature: 1.0,
            top_p: Some(0.4),
            ..Default::default()
        };
        for _ in 0..50 {
            assert_eq!(sample(&logits, &s, &mut rng), 1);
        }
        // Unrestricted sampling visits several tokens, reproducibly for a seed.
        let s = Sampling {
            temperature: 1.0,
            seed: 9,
            ..Default::default()
        };
        let draw = |seed| {
            let mut r = Rng::new(seed);
            (0..200)
                .map(|_| sample(&logits, &s, &mut r))
                .collect::<Vec<_>>()
        };
        let a = draw(9);
        assert_eq!(a, draw(9));
        assert!(a.contains(&0) && a.contains(&1) && a.contains(&2));
    }

    #[test]
    fn invalid_parameters_are_rejected() {
        for s in [
            Sampling {
                temperature: -1.0,
                ..Default::default()
            },
            Sampling {
                temperature: f32::NAN,
                ..Default::default()
            },
            Sampling {
                top_p: Some(0.0),
                ..Default::default()
            },
            Sampling {
                top_p: Some(1.5),
                ..Default::default()
            },
            Sampling {
                top_k: Some(0),
                ..Default::default()
            },
        ] {
            assert!(s.validate().is_err(), "{s:?}");
        }
    }
}
