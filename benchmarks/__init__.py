"""Paddock benchmarks: ``.venv/bin/python -m benchmarks``."""
