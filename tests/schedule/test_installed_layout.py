"""A schedule added from the installed package runs with what it needs (issue 30).

Before #30 the systemd unit carried neither the gateway's location nor the guest image's (the
package's ``/usr/bin/paddock`` wrapper sets them, and a timer-started run has no wrapper), and the
fallback looked for the gateway in the checkout's ``.venv-gateway``, which the installed layout
(``/opt/paddock/venv``, ``/opt/paddock/gateway``) does not have: a timer-started run under any
policy with egress grants failed. Nothing told the person that timers stop when they log out.

Real: ``paddock schedule add`` as a process, run by a Python laid out as the package lays it out
(``<root>/opt/paddock/venv`` beside ``<root>/opt/paddock/gateway``); the unit files it writes. No fakes.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import paddock
from paddock.schedule import units
from paddock.schedule.manage import Added
from paddock.schedule.store import Schedule


def _installed_layout(root: Path) -> tuple[Path, Path]:
    """``<root>/opt/paddock/venv/bin/python`` (a venv of this interpreter) and the gateway beside it."""
    venv = root / "opt" / "paddock" / "venv"
    (venv / "bin").mkdir(parents=True)
    base = Path(sys._base_executable if hasattr(sys, "_base_executable") else sys.executable)
    (venv / "bin" / "python").symlink_to(base.resolve())
    (venv / "pyvenv.cfg").write_text(f"home = {base.resolve().parent}\ninclude-system-site-packages = false\n")
    mitmdump = root / "opt" / "paddock" / "gateway" / "bin" / "mitmdump"
    mitmdump.parent.mkdir(parents=True)
    mitmdump.write_text(f"#!{base.resolve()}\n")
    mitmdump.chmod(0o755)
    return venv / "bin" / "python", mitmdump


def _add(python: Path, tmp_path: Path, **extra: str) -> str:
    folder = tmp_path / "work"
    folder.mkdir(exist_ok=True)
    app = Path(paddock.__file__).resolve().parents[1]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PADDOCK_DATA_DIR": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "PYTHONPATH": f"{app}:{sysconfig.get_paths()['purelib']}",
           **extra}  # fmt: skip
    proc = subprocess.run([str(python), "-m", "paddock.cli", "schedule", "add", "--folder", str(folder), "--when",
                           "every monday 09:00", "Summarise the invoices"],
                          capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sid = proc.stdout.split()[1]
    return (tmp_path / "config" / "systemd" / "user" / f"paddock-schedule-{sid}.service").read_text()


def test_the_unit_carries_the_gateway_of_the_installed_layout(tmp_path: Path) -> None:
    python, mitmdump = _installed_layout(tmp_path / "root")
    service = _add(python, tmp_path)  # run without the wrapper's variables: found where the package puts it
    assert f'Environment="PADDOCK_MITMDUMP={mitmdump}"' in service, service


def test_the_unit_carries_what_the_packages_wrapper_set(tmp_path: Path) -> None:
    python, mitmdump = _installed_layout(tmp_path / "root")
    image = tmp_path / "root" / "opt" / "paddock" / "guest"
    service = _add(python, tmp_path, PADDOCK_MITMDUMP=str(mitmdump), PADDOCK_GUEST_IMAGE=str(image))
    assert f'Environment="PADDOCK_MITMDUMP={mitmdump}"' in service
    assert f'Environment="PADDOCK_GUEST_IMAGE={image}"' in service


def test_linger_is_offered_in_plain_words_when_timers_stop_at_logout() -> None:
    schedule = cast(Schedule, SimpleNamespace(id="abc123", when="every monday 09:00", folder="~/work"))
    off = Added(schedule, True, False).message  # type: ignore[call-arg]
    assert "while you are logged out" in off and "loginctl enable-linger" in off
    assert "enable-linger" not in Added(schedule, True, True).message  # type: ignore[call-arg]
    assert units.linger_enabled() in (True, False, None)
