//! Containing panics of third-party parsers. A few dependencies panic on some malformed input
//! instead of returning an error (tokenizers 0.22 `expect`s while deserialising a decoder of
//! the wrong shape). Their calls on input-derived data run inside [`contain`], which turns a
//! panic into a message for a typed error. The default panic hook would still print
//! "thread ... panicked at" on stderr; a chained hook, installed once, keeps quiet for panics
//! inside [`contain`] on the current thread and passes every other panic to the previous hook
//! unchanged. (Under `panic = "abort"`, as on wasm32, a panic still aborts.)

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    static CONTAINED: Cell<usize> = const { Cell::new(0) };
    static MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CONTAINED.with(Cell::get) > 0 {
                let at = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                let payload = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                MESSAGE.with(|m| *m.borrow_mut() = Some(format!("{payload}{at}")));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`; a panic inside it becomes `Err(message)` instead of unwinding into the caller.
/// `f` must not leave shared state half-updated when it panics (it parses into fresh values).
pub(crate) fn contain<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    CONTAINED.with(|c| c.set(c.get() + 1));
    let out = catch_unwind(AssertUnwindSafe(f));
    CONTAINED.with(|c| c.set(c.get() - 1));
    out.map_err(|_| {
        MESSAGE
            .with(|m| m.borrow_mut().take())
            .unwrap_or_else(|| "a panic".into())
    })
}

#[cfg(test)]
mod tests {
    use super::contain;

    #[test]
    fn a_panic_becomes_its_message() {
        assert_eq!(contain(|| 7), Ok(7));
        let e = contain(|| -> u8 { panic!("bad decoder {}", 3) }).unwrap_err();
        assert!(e.starts_with("bad decoder 3 at "), "{e}");
        assert!(e.contains("contain.rs"), "{e}");
        // Nested and repeated use keeps working; a later panic is not contained.
        let inner = contain(|| contain(|| -> () { panic!("inner") }));
        assert!(inner.unwrap().unwrap_err().starts_with("inner"));
        let outside = std::panic::catch_unwind(|| -> () { panic!("outside") });
        assert!(outside.is_err());
    }
}
