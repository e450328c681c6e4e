//! # gan-metrics: detection metrics of xray-gan, without candle (issue 5: not yet implemented)
