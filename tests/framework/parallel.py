"""Running the suite in parallel workers (pytest-xdist, ``-n 2 --dist loadfile``; scripts/test.sh).

What keeps a test safe beside another:

* each worker is its own process: its own runtime folder (``/tmp/pdk-test-<pid>``), temporary
  folders, app data (``PADDOCK_DATA_DIR``), D-Bus session and gnome-keyring
  (``tests.framework.bus``); the saved sandbox is shared, made once under a lock.
* ``Modules`` (the scheduler): a module runs whole on one worker, so a module-scoped fixture (a
  booted sandbox, a gateway) is made once; all of ``tests/remote`` runs on one worker (its tests
  share the run's test sshd, whose authorized keys a session fixture writes). The units that took
  longest when last measured go first (``durations``); each worker takes the next when it is
  nearly done. (xdist's own ``loadgroup`` cannot
  do this with pytest 9: it renames a test through an attribute pytest 9 no longer reads.)
* a failed test's VM logs go to a folder named by its node id (``folder_name``), unique across
  workers.
* what a worker's tests left running is sent to the controller (``send``/``received``), which
  reports it with the run's and fails the run.
"""

from __future__ import annotations

from typing import Any

import pytest

REMOTE = "tests/remote/"
_OUTPUT = "paddock"


def worker(config: pytest.Config) -> str:
    """This process's worker id ("gw0", …) in a parallel run; "" in the controller or a serial run."""
    return str(getattr(config, "workerinput", {}).get("workerid", ""))


def unit_of(nodeid: str) -> str:
    """The tests that run together on one worker: a module; all of ``tests/remote``."""
    return REMOTE if nodeid.startswith(REMOTE) else nodeid.split("::", 1)[0]


def scheduler(config: pytest.Config, log: Any) -> Any:
    """The scheduler for ``--dist loadfile``: xdist's, with ``unit_of`` as the unit, handing out
    the units that took longest when last measured first (``durations``; xdist's own order is by
    number of tests, which sends a long module of one test last, to run while the other worker
    idles)."""
    from xdist.scheduler import LoadFileScheduling

    from tests.framework import durations

    class Modules(LoadFileScheduling):
        _ordered = False

        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

        def _assign_work_unit(self, node: Any) -> None:
            if not self._ordered:  # the whole queue is known before the first unit goes out
                known = durations.load()
                queue = sorted(self.workqueue.items(), key=lambda kv: -durations.expected(kv[0], len(kv[1]), known))
                self.workqueue.clear()
                self.workqueue.update(queue)
                self._ordered = True
            super()._assign_work_unit(node)

    return Modules(config, log)


def folder_name(nodeid: str) -> str:
    """A folder name for a test's artifacts, unique in the run: its node id, readable."""
    name = nodeid.removeprefix("tests/").replace(".py::", ".").replace("::", ".").replace("/", ".")
    return name[:200]


def send(config: pytest.Config, **lists: list[str]) -> None:
    """(In a worker) hand ``lists`` to the controller with the worker's end."""
    config.workeroutput[_OUTPUT] = {k: list(v) for k, v in lists.items()}  # type: ignore[attr-defined]


def received(node: object) -> tuple[list[str], list[str]]:
    """(In the controller) what a finished worker sent: (VMs killed after a test, processes left)."""
    got = getattr(node, "workeroutput", None) or {}
    sent = got.get(_OUTPUT, {})
    return list(sent.get("killed", [])), list(sent.get("left_behind", []))
