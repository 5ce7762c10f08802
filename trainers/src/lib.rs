//! # trainers — fine-tuning policies on env rewards
//!
//! [`grpo`] holds GRPO's math exactly as TRL 1.16 computes it (advantages,
//! importance ratios, clipped surrogate, k3 KL, aggregation per
//! `loss_type`), on plain arrays with analytic per-token gradients. It is
//! the specification the tensor trainer is tested against, and its golden
//! values come from `shared/reference/grpo.md` §13.

pub mod grpo;
