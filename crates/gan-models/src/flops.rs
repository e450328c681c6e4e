//! Counting the floating-point operations of forward passes, for throughput reports.
//!
//! Convolutions and the attention products add `2 · multiply-adds` to a per-thread counter as
//! they run (the rest — activations, normalisation, the code discriminator's small linear layers —
//! is well under 1 % at every configuration here and is not counted). Counting by running the real
//! forward pass keeps the numbers true to the networks as built.

use std::cell::Cell;

thread_local! {
    static COUNTED: Cell<u64> = const { Cell::new(0) };
}

/// Adds `multiply_adds` multiply-adds (2 FLOPs each) to this thread's counter.
pub fn add_multiply_adds(multiply_adds: usize) {
    COUNTED.with(|c| c.set(c.get().saturating_add(2 * multiply_adds as u64)));
}

/// Runs `f` and returns its result with the FLOPs its forward passes counted on this thread.
pub fn count<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = COUNTED.with(Cell::get);
    let out = f();
    let after = COUNTED.with(Cell::get);
    (out, after.saturating_sub(before))
}
