"""Benchmarks and synthetic-source tooling for wheels-etl (not part of the installed package)."""
