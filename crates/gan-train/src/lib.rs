//! # gan-train: adversarial training loops of xray-gan (issue 4: not yet implemented)
