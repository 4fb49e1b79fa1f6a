"""Adaptive Sparse Training: significance scores, the Sundew gate and its PI controller (DESIGN.md §5)."""
