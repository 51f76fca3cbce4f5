"""Tests of the audience stage."""
