"""The package version, read by the build from here (one definition)."""

__version__ = "0.2.0"
