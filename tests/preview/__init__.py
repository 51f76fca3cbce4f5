"""Tests of the preview stage."""
