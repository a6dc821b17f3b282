"""Training: supervised fine-tuning on teacher trajectories, then GRPO/PPO on the answer reward."""
