"""Bundled data: pretrained models (models/<pde>/<name>/), screenshots, styles."""
