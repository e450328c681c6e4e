//! A per-thread switch held for the length of a call: what [`crate::blocks::frozen`],
//! [`crate::kernels::portable_kernels`] and [`crate::kernels::with_precision`] are built on.

use std::cell::Cell;
use std::thread::LocalKey;

/// Runs `f` with `flag` set on this thread; its previous value comes back when `f` returns or
/// unwinds, so calls nest.
pub(crate) fn set_while<T>(flag: &'static LocalKey<Cell<bool>>, f: impl FnOnce() -> T) -> T {
    hold_while(flag, true, f)
}

/// Runs `f` with `flag` holding `value` on this thread (set or cleared); its previous value comes
/// back when `f` returns or unwinds.
pub(crate) fn hold_while<T>(
    flag: &'static LocalKey<Cell<bool>>,
    value: bool,
    f: impl FnOnce() -> T,
) -> T {
    struct Restore(&'static LocalKey<Cell<bool>>, bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            self.0.with(|c| c.set(self.1));
        }
    }
    let _restore = Restore(flag, flag.with(|c| c.replace(value)));
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static FLAG: Cell<bool> = const { Cell::new(false) };
    }

    fn get() -> bool {
        FLAG.with(Cell::get)
    }

    /// A call holds its value for its length, an inner call overrides it either way, and each
    /// value comes back when its call returns, or unwinds.
    #[test]
    fn values_nest_and_come_back() {
        let seen = set_while(&FLAG, || {
            let before = get();
            let inner = hold_while(&FLAG, false, || (get(), set_while(&FLAG, get)));
            (before, inner, get())
        });
        assert_eq!(seen, (true, (false, true), true));
        assert!(!get());
        let unwound = std::panic::catch_unwind(|| set_while(&FLAG, || panic!("inside")));
        assert!(unwound.is_err());
        assert!(!get(), "the flag came back after a panic");
    }
}
