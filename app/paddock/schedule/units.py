"""A systemd user timer and service per schedule, so schedules run with the window closed::

    $XDG_CONFIG_HOME/systemd/user/paddock-schedule-<id>.timer     OnCalendar=…, AccuracySec=1s, Persistent=true
    $XDG_CONFIG_HOME/systemd/user/paddock-schedule-<id>.service   <python> -m paddock.cli schedule run --timer <id>

The timer fires ``WAKE_LEAD_S`` before each due time (``When.ahead_calendar``; ``AccuracySec=1s``
so systemd does not put it off by up to a minute, its default): the run wakes its sandbox then
and sends the task at the due time (``--timer``, ``paddock.schedule.run``). No
``RandomizedDelaySec``. ``Persistent=true`` catches up a run missed while the computer was off
(``--timer`` then finds no due time near and runs at once). The timer is enabled
(the ``timers.target.wants`` link ``systemctl --user enable`` makes) whether or not a user
manager is running now; with one, it is also started. Paddock writes and removes only files
named ``paddock-schedule-*``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from platformdirs import user_config_path

from paddock.schedule.store import Schedule
from paddock.schedule.when import WAKE_LEAD_S, parse_when

log = logging.getLogger(__name__)
PREFIX = "paddock-schedule-"
# Where this Paddock keeps its things and finds its parts, if not the default: the installed package's
# wrapper (/usr/bin/paddock) sets the guest image and the gateway, and a timer-started run has no wrapper.
_PASSED_ON = ("PADDOCK_DATA_DIR", "PADDOCK_CACHE_DIR", "PADDOCK_GUEST_IMAGE", "PADDOCK_MITMDUMP")


def unit_dir() -> Path:
    return user_config_path() / "systemd" / "user"


def _quote(arg: str) -> str:
    """One word of a systemd command line (systemd.service(5), "Command lines"; % is a specifier)."""
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def _env_quote(assignment: str) -> str:
    """One ``Environment=`` assignment (systemd.exec(5)): specifiers (%) are expanded there, but
    variables are not, so a ``$`` stays as it is."""
    escaped = assignment.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{escaped}"'


def _one_line(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split()).replace("%", "%%")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def service_text(schedule: Schedule, python: str | None = None) -> str:
    argv = [python or sys.executable, "-m", "paddock.cli", "schedule", "run", "--timer", schedule.id]
    env = "".join(f"Environment={_env_quote(f'{k}={v}')}\n" for k, v in _environment().items())
    return (
        "[Unit]\n"
        f"Description=Paddock schedule {schedule.id}: {_one_line(schedule.task)}\n"
        "\n[Service]\n"
        "Type=oneshot\n"
        f"ExecStart={' '.join(_quote(a) for a in argv)}\n"
        f"{env}"
        f"TimeoutStartSec={(schedule.timeout_min + 15) * 60}\n"  # a backstop: the run stops itself first
        "Nice=10\n"
    )


def _environment() -> dict[str, str]:
    """What the run needs to find, as this Paddock finds it now: passed-on settings, and the
    egress gateway's location (a run under a policy with egress grants starts it)."""
    env = {k: os.environ[k] for k in _PASSED_ON if os.environ.get(k)}
    if "PADDOCK_MITMDUMP" not in env:
        from paddock.egress.gateway import GatewayError, find_mitmdump

        try:
            env["PADDOCK_MITMDUMP"] = str(find_mitmdump())
        except GatewayError:
            pass  # no gateway here: a run that needs one says so, as a run from the window would
    return env


def linger_enabled() -> bool | None:
    """Does systemd keep this person's timers running while they are logged out (``Linger``)?
    None when it cannot be told (no ``loginctl``)."""
    tool = shutil.which("loginctl")
    if tool is None:
        return None
    user = os.environ.get("USER") or str(os.getuid())
    try:
        proc = subprocess.run([tool, "show-user", user, "--property=Linger", "--value"], capture_output=True,
                              text=True, timeout=10, check=False)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    value = proc.stdout.strip()
    if proc.returncode != 0 or value not in ("yes", "no"):
        return None  # not logged in at all now, or an old loginctl
    return value == "yes"


LINGER_OFF = (
    "Your computer runs it only while you are logged in. To have it run while you are logged out too, "
    "run this once: loginctl enable-linger"
)


def timer_text(schedule: Schedule) -> str:
    return (
        "[Unit]\n"
        f"Description=Paddock schedule {schedule.id}: {_one_line(schedule.when)}\n"
        "\n[Timer]\n"
        f"OnCalendar={parse_when(schedule.when).ahead_calendar(WAKE_LEAD_S)}\n"
        "AccuracySec=1s\n"
        "Persistent=true\n"
        f"Unit={PREFIX}{schedule.id}.service\n"
        "\n[Install]\n"
        "WantedBy=timers.target\n"
    )


def _files(schedule_id: str, where: Path) -> tuple[Path, Path, Path]:
    name = f"{PREFIX}{schedule_id}"
    return where / f"{name}.service", where / f"{name}.timer", where / "timers.target.wants" / f"{name}.timer"


def _systemctl(*args: str) -> subprocess.CompletedProcess[str] | None:
    tool = shutil.which("systemctl")
    if tool is None:
        return None
    try:
        return subprocess.run([tool, "--user", *args], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("systemctl --user %s: %s", " ".join(args), exc)
        return None


def user_manager_running() -> bool:
    """Is a systemd user manager reachable from here (the person's login session)?"""
    proc = _systemctl("show-environment")
    return proc is not None and proc.returncode == 0


def install(schedule: Schedule, *, where: Path | None = None) -> bool:
    """Write and enable the schedule's timer; True when a user manager took it now."""
    where = where or unit_dir()
    service, timer, wanted = _files(schedule.id, where)
    wanted.parent.mkdir(parents=True, exist_ok=True)
    for path, text in ((service, service_text(schedule)), (timer, timer_text(schedule))):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # the task's words are the person's
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    if not wanted.is_symlink():
        wanted.symlink_to(Path("..") / timer.name)
    if not user_manager_running():
        return False
    _systemctl("daemon-reload")
    proc = _systemctl("start", timer.name)
    if proc is None or proc.returncode != 0:
        log.warning("could not start %s: %s", timer.name, proc.stderr.strip() if proc else "no systemctl")
        return False
    return True


def uninstall(schedule_id: str, *, where: Path | None = None) -> None:
    """Stop and delete the schedule's timer and service (nothing else is touched)."""
    where = where or unit_dir()
    service, timer, wanted = _files(schedule_id, where)
    live = user_manager_running()
    if live:
        _systemctl("stop", timer.name)
    for path in (wanted, timer, service):
        path.unlink(missing_ok=True)
    if live:
        _systemctl("daemon-reload")


def installed(schedule_id: str, *, where: Path | None = None) -> bool:
    return all(p.exists() for p in _files(schedule_id, where or unit_dir())[:2])
