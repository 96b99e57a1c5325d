"""Training: the loop, checkpoints and evaluation metrics."""
