"""``paddock remote ...``: the server side of a sandbox host, run over SSH by the person's Paddock
(see ``paddock.remote.server``). Not for people to type."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    remote = sub.add_parser("remote", help="the server side of a sandbox host (run over SSH by Paddock)")
    rsub = remote.add_subparsers(dest="remote_command", required=True)
    serve = rsub.add_parser("serve", help="boot a session's sandbox; stop it when stdin closes")
    serve.add_argument("--session", required=True)
    serve.add_argument("--sessions", type=int, default=4, help="how many sessions this account runs at most")
    serve.add_argument("--read-only", action="store_true", help="share the workspace read-only")
    serve.set_defaults(handler=_serve)
    connect = rsub.add_parser("connect", help="relay stdin/stdout to a session's guest agent")
    connect.add_argument("--session", required=True)
    connect.set_defaults(handler=_connect)
    manifest = rsub.add_parser("manifest", help="a session workspace's files and their SHA-256")
    manifest.add_argument("--session", required=True)
    manifest.set_defaults(handler=_manifest)
    files = rsub.add_parser("files", help="move files in and out of a session workspace (a framed protocol)")
    files.add_argument("--session", required=True)
    files.set_defaults(handler=_files)
    load = rsub.add_parser("load", help="how many sessions run here now")
    load.set_defaults(handler=_load)


async def _serve(ns: argparse.Namespace) -> int:
    from paddock.remote import server

    return await server.serve(ns.session, max(1, ns.sessions), read_only=ns.read_only)


async def _connect(ns: argparse.Namespace) -> int:
    from paddock.remote import server

    return server.connect(ns.session)


async def _manifest(ns: argparse.Namespace) -> int:
    from paddock.remote import server

    sys.stdout.write(json.dumps(server.manifest(ns.session)))
    return 0


async def _load(ns: argparse.Namespace) -> int:
    from paddock.remote import server

    sys.stdout.write(f"{server.load()}\n")
    return 0


async def _files(ns: argparse.Namespace) -> int:
    from paddock.remote import server

    return server.files(ns.session)
