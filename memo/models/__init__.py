"""Models: each a plain nn.Module mapping (text, audio, vision, emotion vectors) to (B, K) logits."""
