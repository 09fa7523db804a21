"""Datasets of PDE solutions: generation and loading."""
