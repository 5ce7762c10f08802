//! Runs untrusted, model-written programs under hard limits.
