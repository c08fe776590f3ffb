"""Scoring checkpoints: lm-eval tasks through our LM adapter, plus visual checks on held-out pages."""
