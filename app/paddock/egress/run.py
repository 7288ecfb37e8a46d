"""The gateway process: mitmproxy's own ``DumpMaster`` with Paddock's rules behind the guard.

Run in the gateway's environment as ``python -m paddock.egress.run``. Not ``mitmdump -s``: a
script loaded that way is reloaded when its file changes, and a script that fails to load
leaves mitmproxy running with no rules at all. Here the rules are built before the proxy
listens; if they cannot be, the process exits and there is no gateway (so no egress).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import signal
import sys
from typing import Any

from mitmproxy import options  # type: ignore[import-not-found]  # the gateway's own environment
from mitmproxy.tools.dump import DumpMaster  # type: ignore[import-not-found]

from paddock.egress.channel import GatewaySide
from paddock.egress.guard import Guard


def _test_addons(paths: list[str]) -> list[Any]:
    out: list[Any] = []
    for i, path in enumerate(paths):
        spec = importlib.util.spec_from_file_location(f"paddock_test_addon_{i}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        out += list(getattr(module, "addons", []))
    return out


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="paddock.egress.run")
    parser.add_argument("--confdir", required=True)
    parser.add_argument("--upstream-ca")
    parser.add_argument("--test-addon", action="append", default=[])
    parser.add_argument("--channel-fd", type=int, required=True)  # the host's end: paddock.egress.channel
    args = parser.parse_args(argv)

    from paddock.egress.addon import Gate  # reads the configuration and the keys (stdin)

    opts = options.Options()
    master = DumpMaster(opts, with_termlog=True, with_dumper=False)
    # The host's end closing (the app went away) stops the gateway: nothing goes out unrecorded.
    channel = GatewaySide.from_fd(args.channel_fd, closed=master.shutdown)
    master.addons.add(Guard(Gate(channel), stop=master.shutdown), *_test_addons(args.test_addon))
    settings: dict[str, Any] = {
        "listen_host": "127.0.0.1", "listen_port": 0, "confdir": args.confdir, "connection_strategy": "lazy",
        "block_global": False, "http2": False, "onboarding": False, "termlog_verbosity": "warn",
        "rawtcp": False,  # what is not TLS or HTTP is read as HTTP (and refused), never passed through raw
    }  # fmt: skip
    if args.upstream_ca:
        settings["ssl_verify_upstream_trusted_ca"] = args.upstream_ca
    opts.update(**settings)
    loop = asyncio.get_running_loop()
    channel.attach(loop)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, master.shutdown)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    await master.run()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
