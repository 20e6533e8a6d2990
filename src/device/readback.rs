//! Reading buffers back: `map_async` futures that never block the browser, and never block an
//! async caller's thread on native.
//!
//! On the web the browser resolves the map and wakes the future. Natively wgpu resolves maps
//! only while someone polls the device: inside the blocking edge ([`crate::edge::block_on`]) the
//! waiting thread polls itself (no hand-off); otherwise a per-device poller thread, started on
//! first need, polls until the map resolves and wakes the future.

use crate::error::{Error, Result};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// A value a wgpu callback delivers, and the task waiting for it.
struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

type Shared<T> = Arc<Mutex<Slot<T>>>;

fn slot<T>() -> Shared<T> {
    Arc::new(Mutex::new(Slot {
        value: None,
        waker: None,
    }))
}

/// Delivers `value` to the waiting task (called from the wgpu callback).
fn deliver<T>(slot: &Shared<T>, value: T) {
    let mut s = slot.lock().unwrap_or_else(|p| p.into_inner());
    s.value = Some(value);
    if let Some(w) = s.waker.take() {
        w.wake();
    }
}

/// Resolves when the callback behind `slot` has run.
struct Wait<'a, T> {
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    device: &'a super::Device,
    slot: Shared<T>,
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    asked_poller: bool,
}

impl<T> Wait<'_, T> {
    /// The value if delivered; otherwise registers `waker` (under the same lock, so a delivery
    /// in between cannot be missed).
    fn take(&self, waker: Option<&Waker>) -> Option<T> {
        let mut s = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        let v = s.value.take();
        if v.is_none() {
            if let Some(w) = waker {
                s.waker = Some(w.clone());
            }
        }
        v
    }
}

impl<T> Future for Wait<'_, T> {
    type Output = Result<T>;

    #[cfg_attr(target_arch = "wasm32", allow(unused_mut))]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        if let Some(v) = self.take(Some(cx.waker())) {
            return Poll::Ready(Ok(v));
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            if crate::edge::blocking_allowed() {
                self.device.wait()?;
                if let Some(v) = self.take(None) {
                    return Poll::Ready(Ok(v));
                }
            }
            if !self.asked_poller {
                self.asked_poller = true;
                self.device.inner.poller.wake(self.device.wgpu());
            }
        }
        Poll::Pending
    }
}

/// Copies `size` bytes out of a `MAP_READ` buffer. The map is requested when this is called,
/// so several readbacks started together resolve in one wait.
pub(crate) fn map_read<'a>(
    device: &'a super::Device,
    staging: &'a wgpu::Buffer,
    size: u64,
) -> impl Future<Output = Result<Vec<u8>>> + 'a {
    let done = slot();
    let tx = done.clone();
    staging
        .slice(..size)
        .map_async(wgpu::MapMode::Read, move |r| deliver(&tx, r));
    async move {
        Wait {
            device,
            slot: done,
            asked_poller: false,
        }
        .await?
        .map_err(|e| Error::gpu("map", e))?;
        let data = staging
            .slice(..size)
            .get_mapped_range()
            .map_err(|e| Error::gpu("map", e))?
            .to_vec();
        staging.unmap();
        Ok(data)
    }
}

/// Resolves when all work submitted to the queue so far has finished.
pub(crate) async fn work_done(device: &super::Device) -> Result<()> {
    let done = slot();
    let tx = done.clone();
    device
        .queue()
        .on_submitted_work_done(move || deliver(&tx, ()));
    Wait {
        device,
        slot: done,
        asked_poller: false,
    }
    .await
}

/// The native poller thread of one device: each wake-up polls the device until the work
/// submitted so far is done, which resolves pending maps. It ends with the device.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Default)]
pub(crate) struct Poller {
    tx: Mutex<Option<std::sync::mpsc::Sender<()>>>,
}

#[cfg(not(target_arch = "wasm32"))]
impl Poller {
    fn wake(&self, device: &wgpu::Device) {
        let mut tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        if tx.is_none() {
            let (send, recv) = std::sync::mpsc::channel::<()>();
            let dev = device.clone();
            let spawned = std::thread::Builder::new()
                .name("wgpu-infer-poll".into())
                .spawn(move || {
                    while recv.recv().is_ok() {
                        // Errors surface through the waiting future's own checks.
                        let _ = dev.poll(wgpu::PollType::wait_indefinitely());
                    }
                });
            if spawned.is_err() {
                // No thread: poll here once; the map may already be done.
                let _ = device.poll(wgpu::PollType::wait_indefinitely());
                return;
            }
            *tx = Some(send);
        }
        if let Some(t) = tx.as_ref() {
            let _ = t.send(());
        }
    }
}
