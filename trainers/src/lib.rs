//! Trainers (GRPO, SFT) that fine-tune policies on env rewards.
