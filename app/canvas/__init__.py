"""Field display (FieldView) and drawing/observation canvases (DrawCanvas)."""
