"""The trajectory: every benchmark across phases, anchored to P0."""
