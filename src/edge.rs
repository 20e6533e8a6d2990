//! The synchronous edge (native only). The core is async; the blocking wrappers of the public
//! API (`Device::new`, `Plan::run`, `Bert::embed`, ...) run its futures here with `pollster`.
//!
//! While a thread is inside [`block_on`], a GPU readback may wait for the device on that same
//! thread (`device.poll(wait)`), which is what a blocking caller wants: no hand-off to another
//! thread, no extra latency. Outside it (an async caller on some executor), readbacks never
//! block the caller's thread: a per-device poller thread drives the device instead (see
//! `device/readback.rs`).

use std::cell::Cell;
use std::future::Future;

thread_local! {
    static BLOCKING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` to completion on this thread.
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    /// Restores the previous state even when `f` panics.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            BLOCKING.with(|b| b.set(self.0));
        }
    }
    let _restore = Restore(BLOCKING.with(|b| b.replace(true)));
    pollster::block_on(f)
}

/// Whether the current thread is inside [`block_on`] (and may therefore wait for the GPU).
pub(crate) fn blocking_allowed() -> bool {
    BLOCKING.with(|b| b.get())
}
