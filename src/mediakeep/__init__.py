"""mediakeep: a self-hosted media service."""

__version__ = "0.1.0"
