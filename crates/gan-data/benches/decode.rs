//! Images/s of decode + preprocess on 512×512 radiograph PNGs: cold (every file decoded, in
//! parallel) and cached (served from the preprocessed-image cache).
//!
//! `cargo bench -p gan-data --bench decode`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gan_data::synth::{SynthConfig, write_synthetic_mura};
use gan_data::{Listing, LoadOptions, Preprocess, load_images, read_mura};

fn decode(c: &mut Criterion) {
    let data = tempfile::tempdir().expect("temp dir");
    let config = SynthConfig {
        seed: 1,
        studies_per_part: 8,
        size: 512,
        ..Default::default()
    };
    write_synthetic_mura(data.path(), &config, false).expect("synthetic data");
    let table = read_mura(data.path(), Listing::Auto).expect("parse");
    let n = table.len() as u64;
    let cache = tempfile::tempdir().expect("temp dir");
    let preprocess = Preprocess {
        size: 64,
        ..Default::default()
    };

    let mut group = c.benchmark_group("decode_512px_to_64px");
    group.throughput(Throughput::Elements(n));
    group.sample_size(10);
    group.bench_function("cold", |b| {
        let options = LoadOptions {
            preprocess,
            ..Default::default()
        };
        b.iter(|| load_images(&table.samples, &options).expect("load"))
    });
    let cached = LoadOptions {
        preprocess,
        cache_dir: Some(cache.path().to_path_buf()),
        ..Default::default()
    };
    load_images(&table.samples, &cached).expect("warm the cache");
    group.bench_function("cached", |b| {
        b.iter(|| {
            let set = load_images(&table.samples, &cached).expect("load");
            assert_eq!(set.report.decoded, 0);
            set
        })
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
