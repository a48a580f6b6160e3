"""Benchmarks for netlab; run them as scripts (see bench/README.md)."""
