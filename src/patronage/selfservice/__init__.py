"""selfservice capability."""
