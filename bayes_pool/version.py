"""The package version, in a module of its own so that any module can read it without
importing the package root (the public API, at the top of the layers)."""

__version__ = "0.1.0"
