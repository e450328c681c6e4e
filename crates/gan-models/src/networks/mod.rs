//! The networks detectors share (SPEC §2): encoder, generator, image discriminator, and their
//! conv trunk. A network only one detector uses lives in that detector's folder.

mod discriminator;
mod encoder;
mod generator;
mod trunk;

pub use discriminator::{Discriminator, DiscriminatorOutput};
pub use encoder::{Encoder, EncoderOutput};
pub use generator::Generator;
pub use trunk::{ConvTrunk, TrunkFeatures};
