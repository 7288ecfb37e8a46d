"""Placeholder: see docs/ARCHITECTURE.md for what lands here."""
