//! Forward passes through a network whose own weights are not being trained in this step (the
//! discriminator inside the generator's loss, the generator inside the encoder's loss). Inside
//! [`frozen`], layers use their weights detached from the graph, so the backward pass still
//! carries gradients through the network to its input but computes no weight gradients for it:
//! a convolution's backward pass then runs one matrix product instead of two.

use std::cell::Cell;

thread_local! {
    static FROZEN: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with every layer's weights detached (nested calls stay frozen); the previous state
/// comes back when `f` returns or unwinds.
pub fn frozen<T>(f: impl FnOnce() -> T) -> T {
    crate::thread_flag::set_while(&FROZEN, f)
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

#[cfg(test)]
mod tests {
    use super::{frozen, is_frozen};

    #[test]
    fn frozen_nests_and_is_undone_on_return_and_on_panic() {
        assert!(!is_frozen());
        frozen(|| {
            assert!(is_frozen());
            frozen(|| assert!(is_frozen()));
            assert!(is_frozen(), "an inner call must not unfreeze the outer one");
        });
        assert!(!is_frozen());
        let caught = std::panic::catch_unwind(|| frozen(|| panic!("inside")));
        assert!(caught.is_err());
        assert!(
            !is_frozen(),
            "a panic inside must not leave the thread frozen"
        );
    }
}
