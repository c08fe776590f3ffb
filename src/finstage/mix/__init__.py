"""Per-stage training mixtures: named sources with weights, exact-duplicate removal, sampling."""

from finstage.mix.build import MixConfig, allocate, build_mixture, mix_records, normalized_key

__all__ = ["MixConfig", "allocate", "build_mixture", "mix_records", "normalized_key"]
