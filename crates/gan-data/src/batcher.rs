//! Batches of candle tensors `(B, 1, S, S)` from an [`ImageSet`]: shuffled and augmented per epoch
//! from a seed for training, in order and untouched for evaluation.

use candle::{Device, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;

use crate::augment::Augmentation;
use crate::error::Result;
use crate::loader::ImageSet;

/// One batch: the images and which entries of the set they are.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `(B, 1, S, S)`, values in [−1, 1].
    pub images: Tensor,
    /// Index of each image in the [`ImageSet`].
    pub indices: Vec<usize>,
}

/// Turns an image set into batches.
#[derive(Debug, Clone)]
pub struct Batcher<'a> {
    images: &'a ImageSet,
    batch_size: usize,
    device: Device,
}

impl<'a> Batcher<'a> {
    pub fn new(images: &'a ImageSet, batch_size: usize, device: &Device) -> Self {
        Batcher {
            images,
            batch_size: batch_size.max(1),
            device: device.clone(),
        }
    }

    /// The order of one training epoch: a permutation drawn from `(seed, epoch)`.
    pub fn epoch_order(&self, seed: u64, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.images.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(mix(seed, epoch, u64::MAX)));
        order
    }

    /// Training batches of one epoch: shuffled, augmented, full batches only (a last partial
    /// batch is dropped so every step sees `batch_size` images). Each image's augmentation is drawn
    /// from `(seed, epoch, index)`, so it does not depend on batch order or thread count.
    pub fn train_epoch(
        &self,
        seed: u64,
        epoch: u64,
        augmentation: &Augmentation,
    ) -> impl Iterator<Item = Result<Batch>> + '_ {
        let order = self.epoch_order(seed, epoch);
        let augmentation = *augmentation;
        let chunks: Vec<Vec<usize>> = order
            .chunks(self.batch_size)
            .filter(|c| c.len() == self.batch_size)
            .map(|c| c.to_vec())
            .collect();
        chunks.into_iter().map(move |indices| {
            self.make_batch(indices, |i, pixels| {
                let mut rng = StdRng::seed_from_u64(mix(seed, epoch, i as u64));
                augmentation.apply(pixels, self.images.image_size(), &mut rng)
            })
        })
    }

    /// Evaluation batches: every image once, in order, without augmentation.
    pub fn eval_batches(&self) -> impl Iterator<Item = Result<Batch>> + '_ {
        let indices: Vec<usize> = (0..self.images.len()).collect();
        let chunks: Vec<Vec<usize>> = indices
            .chunks(self.batch_size)
            .map(|c| c.to_vec())
            .collect();
        chunks
            .into_iter()
            .map(move |indices| self.make_batch(indices, |_, pixels| pixels.to_vec()))
    }

    /// Number of full training batches in an epoch.
    pub fn train_batches_per_epoch(&self) -> usize {
        self.images.len() / self.batch_size
    }

    fn make_batch(
        &self,
        indices: Vec<usize>,
        transform: impl Fn(usize, &[f32]) -> Vec<f32> + Sync,
    ) -> Result<Batch> {
        let s = self.images.image_size();
        let data: Vec<f32> = indices
            .par_iter()
            .flat_map_iter(|&i| transform(i, &self.images.image(i)))
            .collect();
        let images = Tensor::from_vec(data, (indices.len(), 1, s, s), &self.device)?;
        Ok(Batch { images, indices })
    }
}

/// A 64-bit seed from three numbers (SplitMix64 finaliser), so nearby inputs give unrelated seeds.
pub fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut z =
        seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
