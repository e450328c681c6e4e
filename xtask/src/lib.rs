//! Project tasks behind `cargo xtask`: fetching MURA safely, the CI sequence, and the paired
//! comparison with the PyTorch peer.

pub mod ci;
pub mod download;
pub mod extract;
pub mod fetch_data;
pub mod peer_pairs;
