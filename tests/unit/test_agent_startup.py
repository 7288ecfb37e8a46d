"""The guest agent's quick start (#33): what grpc imports and the agent never uses (asyncio,
grpc.aio), and what its libraries import but a first command never uses (traceback, protobuf's
text format and pure-Python messages, calendar, bz2, lzma), is not loaded by the agent's start nor by serving
calls, and still works when something does use it.

Runs the agent's own start in a separate interpreter, laid out as the image lays it out (the
generated code under an otherwise empty ``paddock`` package, no ``site``: the agent starts with
``python3 -ISu``), with the host's grpcio and protobuf (the image pins the same versions). The
grpc server is real; nothing is faked.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import grpc

REPO = Path(__file__).resolve().parents[2]
SITE_PACKAGES = Path(grpc.__file__).resolve().parents[1]  # where this environment's grpc is

AGENT = textwrap.dedent(
    """
    import sys
    sys.path[:0] = [{site!r}, {agent!r}]
    sys.path.append({packages!r})
    import paddock_guest.__main__  # the agent's start: every module it imports before serving
    import tempfile  # after the start: it imports shutil, and with it bz2 and lzma
    from concurrent import futures
    import grpc
    from paddock.guest.v1 import agent_pb2 as pb, agent_pb2_grpc as pb_grpc
    from paddock_guest.claim import BootKeyInterceptor, KeyBox
    from paddock_guest.events import EventHub
    from paddock_guest.service import Agent

    def loaded(name):
        return name in sys.modules and type(sys.modules[name]).__name__ != "Deferred"

    LATER = (
        "traceback",
        "google.protobuf.text_format",
        "google.protobuf.internal.python_message",
        "calendar",
        "bz2",
        "lzma",
    )
    print("after start", loaded("asyncio"), "asyncio.events" in sys.modules, "grpc.aio._call" in sys.modules)
    print("later ones after start", [name for name in LATER if loaded(name)])
    box = KeyBox()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=[BootKeyInterceptor(box)])
    pb_grpc.add_GuestAgentServicer_to_server(Agent(EventHub(), box), server)
    sock = tempfile.mktemp(suffix=".sock")
    server.add_insecure_port("unix:" + sock)
    server.start()
    with grpc.insecure_channel("unix:" + sock) as channel:
        stub = pb_grpc.GuestAgentStub(channel)
        print("health", stub.Health(pb.HealthRequest()).ready)
        try:
            stub.Info(pb.InfoRequest())  # no key: refused through the interceptor's handler
        except grpc.RpcError as exc:
            print("info", exc.code().name)
    print("after calls", loaded("asyncio"), "asyncio.events" in sys.modules, "grpc.aio._call" in sys.modules)
    print("later ones after calls", [name for name in LATER if loaded(name)])
    import io, logging
    logged = io.StringIO()
    logging.getLogger("t").addHandler(logging.StreamHandler(logged))
    try:
        1 / 0
    except ZeroDivisionError:
        logging.getLogger("t").exception("failed")  # traceback, linecache, tokenize: loaded now
    print("traceback works", "ZeroDivisionError" in logged.getvalue(), "Traceback (most recent" in logged.getvalue())
    print("text format works", repr(str(pb.HealthResponse(ready=True))))
    import calendar, bz2, lzma
    print("others work", calendar.timegm((1970, 1, 2, 0, 0, 0)), len(bz2.compress(b"x")) > 0,
          len(lzma.compress(b"x")) > 0)
    import asyncio
    async def answer():
        return 42
    print("asyncio works", asyncio.run(answer()), "asyncio.events" in sys.modules)
    import grpc.aio
    print("grpc.aio works", callable(grpc.aio.server), "grpc.aio._call" in sys.modules)
    server.stop(0)
    """
)


def _image_site(tmp_path: Path) -> Path:
    """The generated code as the image installs it (``guest_image/build.py``: ``_install_agent``)."""
    site = tmp_path / "site"
    (site / "paddock" / "guest").mkdir(parents=True)
    (site / "paddock" / "__init__.py").write_text("")
    (site / "paddock" / "guest" / "__init__.py").write_text("")
    shutil.copytree(REPO / "app" / "paddock" / "guest" / "v1", site / "paddock" / "guest" / "v1")
    return site


def test_the_agent_starts_and_serves_without_loading_asyncio(tmp_path: Path) -> None:
    code = AGENT.format(
        site=str(_image_site(tmp_path)), agent=str(REPO / "guest_image" / "agent"), packages=str(SITE_PACKAGES)
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines == [
        "after start False False False",  # grpc imported, asyncio and grpc.aio only stand-ins
        "later ones after start []",
        "health True",
        "info UNAUTHENTICATED",
        "after calls False False False",  # serving calls used neither
        "later ones after calls []",
        "traceback works True True",  # the first use loads the real module, with what it imports
        "text format works 'ready: true\\n'",
        "others work 86400 True True",
        "asyncio works 42 True",  # the first use loads the real module
        "grpc.aio works True True",
    ], out.stderr


def test_a_module_already_imported_is_left_alone(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(REPO / "guest_image" / "agent")!r})
        import asyncio
        from paddock_guest import startup
        deferred = startup.defer_unused()
        print("asyncio" in deferred, type(sys.modules["asyncio"]).__name__, sys.modules["asyncio"] is asyncio)
        """
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    # asyncio is imported already: left as it is (grpc is not on this path: nothing to defer there).
    assert out.stdout.split("\n")[0] == "False module True"
