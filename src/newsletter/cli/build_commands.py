"""Commands that make an issue: init, new, build, check."""

from __future__ import annotations
