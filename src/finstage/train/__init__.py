"""Turning records into batches, and the training loop shared by every stage."""
