"""Combining the architectures from out-of-fold predictions only, and writing the submission file."""
