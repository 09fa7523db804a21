"""Live plots fed by Progress.metrics."""
