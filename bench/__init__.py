"""Benchmarks for the coach package (run as scripts; not installed)."""
