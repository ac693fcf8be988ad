"""privacy capability."""
