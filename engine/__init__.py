"""PIDDM Studio engine: PDE library, diffusion teacher, PIDDM distillation and solves.

Imports torch, numpy, scipy and h5py only -- never Qt -- so it runs headless, on a GPU
machine and under torchrun. Keep this module cheap to import.
"""

__version__ = "0.1.0"
