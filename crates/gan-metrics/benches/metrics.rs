//! AUROC with DeLong CI, AP and the full evaluation on 1,000,000 scores (O(n log n)).
//!
//! `cargo bench -p gan-metrics --bench metrics`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gan_metrics::precision::average_precision;
use gan_metrics::roc::auroc_delong;

fn data(n: usize) -> (Vec<f64>, Vec<bool>) {
    // a deterministic mixture: abnormal scores shifted up, with many ties (3 decimals)
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut scores = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let abnormal = next() < 0.3;
        let s = next() + if abnormal { 0.3 } else { 0.0 };
        scores.push((s * 1000.0).round() / 1000.0);
        labels.push(abnormal);
    }
    (scores, labels)
}

fn metrics(c: &mut Criterion) {
    let (scores, labels) = data(1_000_000);
    let mut group = c.benchmark_group("metrics_1M_scores");
    group.sample_size(10);
    group.throughput(Throughput::Elements(scores.len() as u64));
    group.bench_function("auroc_delong", |b| {
        b.iter(|| auroc_delong(&scores, &labels))
    });
    group.bench_function("average_precision", |b| {
        b.iter(|| average_precision(&scores, &labels))
    });
    group.finish();
}

criterion_group!(benches, metrics);
criterion_main!(benches);
