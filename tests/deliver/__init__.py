"""Tests of the deliver stage."""
