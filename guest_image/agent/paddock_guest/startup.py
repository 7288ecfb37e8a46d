"""A quick start for the agent: modules its libraries import but its start and its first command
never use are not loaded.

Under software emulation the agent's imports were most of a cold boot (docs/BENCHMARKS.md, #33).
grpc's import pulls in asyncio (its Cython core imports it) and grpc.aio (its package imports it
last), about a third of grpc's import time, for the asyncio API the agent does not use: it serves
with grpc's threaded server. ``defer_unused`` puts a stand-in for each of them in ``sys.modules``
before grpc is imported: an import of it finds the stand-in (no code runs), and the first
attribute anything looks up on it loads the real module into the same object, so a later use
works as before, only paid for then.

The same stand-ins serve modules that are used, but only off the path to the first command, so
they are paid for when used, if ever: ``traceback`` (``logging`` imports it; used when an error is
logged), protobuf's ``text_format`` (a message printed as text) and ``python_message`` (its
pure-Python message classes, which its descriptor pool imports but the upb backend never uses: the
agent's protocol has no extensions), ``calendar`` (protobuf's timestamp helpers), ``bz2`` and
``lzma`` (``shutil``'s archives). (Not ``inspect``, which grpc's core imports:
``typing_extensions`` uses it at import, when the server is made.)

Called by the agent's start (``paddock_guest.__main__``) before anything imports grpc; a module
already imported is left as it is, so it does nothing in a process that has loaded them (the
host's tests).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import threading
import types

# What grpc imports and the agent does not use, and what its first command does not use (see the
# module's docstring).
UNUSED = (
    "asyncio",
    "grpc.aio",
    "traceback",
    "google.protobuf.text_format",
    "google.protobuf.internal.python_message",
    "calendar",
    "bz2",
    "lzma",
)

_lock = threading.RLock()


class Deferred(types.ModuleType):
    """Stands in ``sys.modules`` for a module nothing has used yet; the first attribute looked up
    that it does not have (anything but its name, spec, loader and path) loads the real module
    into this object, once, whichever thread asks first."""

    def __getattr__(self, attr: str) -> object:
        with _lock:
            if type(self) is Deferred:
                if self.__dict__.get("_paddock_loading"):
                    raise AttributeError(attr)  # its own code, partly run: as for any module
                self.__dict__["_paddock_loading"] = True
                try:
                    spec = self.__spec__
                    assert spec is not None and spec.loader is not None
                    spec.loader.exec_module(self)
                    self.__class__ = types.ModuleType  # type: ignore[assignment]  # now the module itself
                finally:
                    self.__dict__.pop("_paddock_loading", None)
        return getattr(self, attr)


def _spec(name: str) -> importlib.machinery.ModuleSpec | None:
    """Found without importing the module or its parent (a submodule: in its parent's folder; the
    grandparent, as ``google`` for ``google.protobuf.text_format``, is imported to find the parent).
    None when it is not there."""
    parent = name.rpartition(".")[0]
    if not parent:
        return importlib.util.find_spec(name)
    try:
        parent_spec = importlib.util.find_spec(parent)
    except ImportError:  # the grandparent is not there
        return None
    if parent_spec is None or not parent_spec.submodule_search_locations:
        return None
    return importlib.machinery.PathFinder.find_spec(name, list(parent_spec.submodule_search_locations))


def defer(name: str) -> bool:
    """Put a stand-in for ``name`` in ``sys.modules``; False when it is imported already or not there."""
    if name in sys.modules or name.rpartition(".")[0] in sys.modules:
        return False
    spec = _spec(name)
    if spec is None or spec.loader is None:
        return False
    module = importlib.util.module_from_spec(spec)
    module.__class__ = Deferred
    sys.modules[name] = module
    return True


def defer_unused() -> list[str]:
    """Defer every module in ``UNUSED`` that is not imported yet; returns those deferred."""
    return [name for name in UNUSED if defer(name)]
