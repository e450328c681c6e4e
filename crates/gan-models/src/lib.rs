//! # gan-models: the networks of xray-gan (issue 3: not yet implemented)
