"""The suite's fixtures and hooks live in ``tests/framework`` (see ``tests/README.md``); this
file only brings them in, and keeps the names tests import from here working."""

from __future__ import annotations

from tests.framework.fixtures import *  # noqa: F403  (fixtures and hooks: pytest finds them by name)
from tests.framework.fixtures import ARTIFACTS, REPO, ROLE
from tests.framework.vms import Booted, VMFactory, live_processes
from tests.framework.vms import make_dirs as _make_dirs

__all__ = ["ARTIFACTS", "REPO", "ROLE", "Booted", "VMFactory", "_make_dirs", "live_processes"]
