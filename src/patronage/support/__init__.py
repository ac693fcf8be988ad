"""support capability."""
