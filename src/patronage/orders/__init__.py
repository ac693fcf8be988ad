"""orders capability."""
