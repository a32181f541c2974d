"""The package version, in a module of its own: any module reads it without importing the root."""

__version__ = "0.1.0"
