"""Running the suite in parallel workers (pytest-xdist, ``-n 2 --dist loadgroup``; scripts/test.sh).

What keeps a test safe beside another:

* each worker is its own process: its own runtime folder (``/tmp/pdk-test-<pid>``), temporary
  folders, app data (``PADDOCK_DATA_DIR``), D-Bus session and gnome-keyring
  (``tests.framework.bus``); the saved sandbox is shared, made once under a lock.
* ``group``: tests that share something costly or stateful stay on one worker. A module whose
  tests share a module-scoped fixture (a booted sandbox, a gateway) runs whole on one worker (two
  would each boot it); the sandbox-host tests (``tests/remote``) all run on one worker (they share
  the run's test sshd, whose authorized keys a session fixture writes). Every other test is
  handed to whichever worker is free.
* a failed test's VM logs go to a folder named by its node id (``folder_name``), unique across
  workers.
* what a worker's tests left running is sent to the controller (``send``/``received``), which
  reports it with the run's and fails the run.
"""

from __future__ import annotations

import re

import pytest

SHARED_SCOPES = ("class", "module", "package")
REMOTE = "tests/remote/"
_GROUP_SUFFIX = re.compile(r"@[^@\[\]]*$")  # what --dist loadgroup appends to a grouped test's id
_OUTPUT = "paddock"


def worker(config: pytest.Config) -> str:
    """This process's worker id ("gw0", …) in a parallel run; "" in the controller or a serial run."""
    return str(getattr(config, "workerinput", {}).get("workerid", ""))


def shares_costly_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    # The last definition of a name is the one the test gets (a module's own ``booted`` overrides the framework's).
    return any(defs and defs[-1].scope in SHARED_SCOPES for defs in info.name2fixturedefs.values())


def group(items: list[pytest.Item]) -> None:
    """Mark which tests must run on one worker (``xdist_group``; only ``--dist loadgroup`` reads it)."""
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        module = item.nodeid.split("::", 1)[0]
        if item.nodeid.startswith(REMOTE):
            item.add_marker(pytest.mark.xdist_group("remote"))
        elif shares_costly_fixture(item):
            item.add_marker(pytest.mark.xdist_group(module))


def plain_id(nodeid: str) -> str:
    """A test's node id without the group ``--dist loadgroup`` appends to it."""
    return _GROUP_SUFFIX.sub("", nodeid)


def folder_name(nodeid: str) -> str:
    """A folder name for a test's artifacts, unique in the run: its node id, readable."""
    name = plain_id(nodeid).removeprefix("tests/").replace(".py::", ".").replace("::", ".").replace("/", ".")
    return name[:200]


def send(config: pytest.Config, **lists: list[str]) -> None:
    """(In a worker) hand ``lists`` to the controller with the worker's end."""
    config.workeroutput[_OUTPUT] = {k: list(v) for k, v in lists.items()}  # type: ignore[attr-defined]


def received(node: object) -> tuple[list[str], list[str]]:
    """(In the controller) what a finished worker sent: (VMs killed after a test, processes left)."""
    got = getattr(node, "workeroutput", None) or {}
    sent = got.get(_OUTPUT, {})
    return list(sent.get("killed", [])), list(sent.get("left_behind", []))
