"""Evaluation: matching localisations to ground truth and the SMLM-challenge metrics (numpy/scipy only)."""
