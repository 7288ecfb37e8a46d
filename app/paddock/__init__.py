"""Paddock: hand real work to an AI agent without handing it your computer."""

__version__ = "0.1.0"
