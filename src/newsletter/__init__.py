"""Assemble one edition of a newsletter and deliver it."""

__version__ = "0.1.0"
