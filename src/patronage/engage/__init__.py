"""engage capability."""
