"""The demo shop generator: a realistic synthetic shop through the real write paths."""
