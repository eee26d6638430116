"""Simulation of single-molecule acquisitions and Deep-STORM training sets (numpy/scipy only)."""
