"""Models: plain nn.Modules mapping (text, audio, vision, emotion vectors) to (B, K) logits."""
