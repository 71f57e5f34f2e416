"""Cairn: a self-hosted ML platform speaking Google Cloud AI Platform ml v1."""

__version__ = "0.1.0"
