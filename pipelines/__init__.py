"""Whole jobs built from veil's transforms: run, demo, and the `veil` command line."""
