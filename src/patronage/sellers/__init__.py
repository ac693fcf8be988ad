"""sellers capability."""
