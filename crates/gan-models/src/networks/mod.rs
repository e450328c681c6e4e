//! The networks of SPEC §2: encoder, generator, discriminators, and their shared trunk.

mod discriminator;
mod encoder;
mod generator;
mod trunk;

pub use discriminator::{
    CodeDiscriminator, Discriminator, DiscriminatorOutput, JointDiscriminator,
};
pub use encoder::{Encoder, EncoderOutput};
pub use generator::Generator;
pub use trunk::{ConvTrunk, TrunkFeatures};
