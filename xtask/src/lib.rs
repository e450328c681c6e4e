//! Project tasks behind `cargo xtask`: fetching MURA safely, and the CI sequence.

pub mod ci;
pub mod download;
pub mod extract;
pub mod fetch_data;
