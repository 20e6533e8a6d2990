//! Dynamic batching of embedding requests: one thread owns the forward passes; requests queue
//! on a channel, and each forward takes the oldest request plus every request already waiting
//! behind it while the merged batch stays within `max_batch_tokens` and `max_batch_requests`
//! (a single request larger than the token bound runs alone). Inputs are embedded without
//! normalization and normalized per request afterwards, so requests with different `normalize`
//! flags share a forward. Clients that gave up before their batch started are skipped.

use super::error::ApiError;
use super::metrics::{Metrics, Queued};
use crate::models::bert::Bert;
use crate::models::sentence::l2_normalize;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;
use tokenizers::Encoding;
use tokio::sync::oneshot;

/// Bounds of one merged forward.
#[derive(Clone, Copy, Debug)]
pub struct BatchLimits {
    pub max_tokens: usize,
    pub max_requests: usize,
}

/// One request's texts, tokenized.
pub struct EmbedJob {
    pub route: &'static str,
    pub encs: Vec<Encoding>,
    pub normalize: bool,
    pub enqueued: Instant,
    /// Counted in the queue depth until its batch starts.
    pub queued: Option<Queued>,
    pub reply: oneshot::Sender<Result<Vec<Vec<f32>>, ApiError>>,
}

impl EmbedJob {
    fn tokens(&self) -> usize {
        self.encs.iter().map(|e| e.len()).sum()
    }
}

/// The handle requests are submitted through.
pub struct Batcher {
    tx: mpsc::Sender<EmbedJob>,
}

impl Batcher {
    /// Starts the batching thread; it ends when the `Batcher` is dropped and the queue drained.
    pub fn start(
        model: Arc<Bert>,
        limits: BatchLimits,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<(Batcher, std::thread::JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("embed-batcher".into())
            .spawn(move || run(rx, &model, limits, &metrics))?;
        Ok((Batcher { tx }, handle))
    }

    /// Queues a job; its answer arrives on the job's `reply`.
    pub fn submit(&self, job: EmbedJob) -> Result<(), ApiError> {
        self.tx
            .send(job)
            .map_err(|_| ApiError::unhealthy("the embedding worker has stopped"))
    }
}

fn run(rx: mpsc::Receiver<EmbedJob>, model: &Bert, limits: BatchLimits, metrics: &Metrics) {
    let mut carry: Option<EmbedJob> = None;
    loop {
        let first = match carry.take() {
            Some(j) => j,
            None => match rx.recv() {
                Ok(j) => j,
                Err(_) => return, // every sender dropped: shutting down
            },
        };
        let mut tokens = first.tokens();
        let mut jobs = vec![first];
        while jobs.len() < limits.max_requests {
            match rx.try_recv() {
                Ok(j) if tokens + j.tokens() > limits.max_tokens => {
                    carry = Some(j);
                    break;
                }
                Ok(j) => {
                    tokens += j.tokens();
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        jobs.retain(|j| !j.reply.is_closed());
        let start = Instant::now();
        for j in jobs.iter_mut() {
            j.queued = None;
            metrics.queued(j.route, start - j.enqueued);
        }
        if jobs.is_empty() {
            continue;
        }
        let counts: Vec<usize> = jobs.iter().map(|j| j.encs.len()).collect();
        let all: Vec<Encoding> = jobs.iter_mut().flat_map(|j| j.encs.drain(..)).collect();
        metrics.batch(all.len(), jobs.len());
        let result = crate::contain::contain(|| {
            crate::edge::block_on(model.embed_encodings_async(&all, false))
        });
        let took = start.elapsed();
        match result {
            Ok(Ok(vecs)) => {
                let mut vecs = vecs.into_iter();
                for (j, n) in jobs.into_iter().zip(counts) {
                    metrics.inferred(j.route, took);
                    let mut mine: Vec<Vec<f32>> = vecs.by_ref().take(n).collect();
                    if j.normalize {
                        mine.iter_mut().for_each(|v| l2_normalize(v));
                    }
                    let _ = j.reply.send(Ok(mine));
                }
            }
            Ok(Err(e)) => {
                let e = ApiError::from(e);
                for j in jobs {
                    let _ = j.reply.send(Err(e.clone()));
                }
            }
            Err(panic) => {
                let e = ApiError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "backend",
                    format!("the embedding forward failed: {panic}"),
                );
                for j in jobs {
                    let _ = j.reply.send(Err(e.clone()));
                }
            }
        }
    }
}
