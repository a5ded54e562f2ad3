"""The package version, below every layer (the zoo cards and the compare cache record it)."""

__version__ = "0.1.0"
