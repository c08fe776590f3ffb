"""Model assembly (P0), stage plans, and the merge/hand-off between stages."""
