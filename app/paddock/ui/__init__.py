"""The desktop window (Qt lives only here). See docs/ARCHITECTURE.md."""
