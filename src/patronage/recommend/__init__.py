"""recommend capability."""
