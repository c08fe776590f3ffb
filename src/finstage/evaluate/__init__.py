"""Scoring checkpoints: lm-eval tasks through our LM adapter, visual checks on held-out pages."""
