"""File formats: fields files (HDF5), checkpoints, run directories."""
