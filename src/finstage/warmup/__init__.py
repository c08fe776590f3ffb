"""The `warmup` stage: format practice for a P0 built from a config (see pairs.py)."""
