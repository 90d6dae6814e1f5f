"""albert-edge: ALBERT from a checkpoint to a phone."""

__version__ = "0.1.0"
