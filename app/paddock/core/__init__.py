"""Shared foundations: errors, paths and events. Imports nothing else of Paddock."""
