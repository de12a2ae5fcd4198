"""Thumbnails for S3-compatible buckets, driven by upload notifications."""

__version__ = "0.1.0"
