//! A per-thread switch set for the length of a call: what [`crate::blocks::frozen`] and
//! [`crate::kernels::portable_kernels`] are built on.

use std::cell::Cell;
use std::thread::LocalKey;

/// Runs `f` with `flag` set on this thread; its previous value comes back when `f` returns or
/// unwinds, so calls nest.
pub(crate) fn set_while<T>(flag: &'static LocalKey<Cell<bool>>, f: impl FnOnce() -> T) -> T {
    struct Restore(&'static LocalKey<Cell<bool>>, bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            self.0.with(|c| c.set(self.1));
        }
    }
    let _restore = Restore(flag, flag.with(|c| c.replace(true)));
    f()
}
