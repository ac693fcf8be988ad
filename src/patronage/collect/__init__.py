"""collect capability."""
