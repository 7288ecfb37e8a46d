"""Undo, a service with no session, sandbox or window in it: restore points (``store``: manifests and
a per-folder store of file versions, the budget; ``listing``: what a point records, read without
following links), ``LazyKeeper`` (``keeper``: the change guard's ``Keeper``), putting a folder or one
file back (``restore``), how a text file's lines changed since a point (``textdiff``), and what a
session changed and which of those files could run on the host later, with *Revert* (``changes``).

A session uses it through ``paddock.session.undoing`` (audited); see docs/UNDO.md.
"""
