"""Tests of the schedule stage."""
