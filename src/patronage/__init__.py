"""patronage: an open-source customer relationship platform."""
