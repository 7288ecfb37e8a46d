"""A desktop notification through the freedesktop notification service (``notify-send``, or
``gdbus`` calling ``org.freedesktop.Notifications.Notify``). Where neither is installed or no
notification service answers, nothing is shown and the reason is logged: a notification is
never worth failing for."""

from __future__ import annotations

import logging
import shutil
import subprocess

log = logging.getLogger(__name__)
APP = "Paddock"


def _gv(text: str) -> str:
    """``text`` as a GVariant string literal (gdbus parses its arguments as GVariant text)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _command(title: str, body: str, urgent: bool) -> list[str] | None:
    if tool := shutil.which("notify-send"):
        return [tool, "--app-name", APP, "--urgency", "critical" if urgent else "normal", "--", title, body]
    if tool := shutil.which("gdbus"):
        hints = "{'urgency': <byte %d>}" % (2 if urgent else 1)  # noqa: UP031 - GVariant text, not Python
        return [
            tool, "call", "--session", "--dest", "org.freedesktop.Notifications",
            "--object-path", "/org/freedesktop/Notifications", "--method", "org.freedesktop.Notifications.Notify",
            _gv(APP), "0", '""', _gv(title), _gv(body), "[]", hints, "-1",
        ]  # fmt: skip
    return None


def notify(title: str, body: str, *, urgent: bool = False) -> bool:
    """Show a notification; True when a notification service took it."""
    argv = _command(title, body, urgent)
    if argv is None:
        log.info("no desktop notification (neither notify-send nor gdbus is installed): %s", title)
        return False
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        log.info("no desktop notification (%s): %s", exc, title)
        return False
    if proc.returncode != 0:
        log.info("no desktop notification (%s): %s", proc.stderr.strip()[:200], title)
        return False
    return True
