//! Forward passes through a network whose own weights are not being trained in this step (the
//! discriminator inside the generator's loss, the generator inside the encoder's loss). Inside
//! [`frozen`], layers use their weights detached from the graph, so the backward pass still
//! carries gradients through the network to its input but computes no weight gradients for it:
//! a convolution's backward pass then runs one matrix product instead of two.

use std::cell::Cell;

thread_local! {
    static FROZEN: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with every layer's weights detached (nested calls stay frozen).
pub fn frozen<T>(f: impl FnOnce() -> T) -> T {
    let before = FROZEN.with(|c| c.replace(true));
    let out = f();
    FROZEN.with(|c| c.set(before));
    out
}

/// Whether a forward pass is running inside [`frozen`].
pub fn is_frozen() -> bool {
    FROZEN.with(Cell::get)
}

/// `weight` as the current pass should use it: detached inside [`frozen`].
pub(crate) fn weight(weight: &candle::Tensor) -> candle::Tensor {
    if is_frozen() {
        weight.detach()
    } else {
        weight.clone()
    }
}
