"""A D-Bus session bus with a real gnome-keyring of its own, for one worker of a parallel run.

``scripts/test.sh`` runs the suite inside one D-Bus session (``dbus-run-session``) with a
gnome-keyring unlocked on it (``scripts/with_keyring.sh``). Two pytest-xdist workers would share
that bus: one worker's test removing the model key from the keychain, or taking the well-known
name of the notification service, would break the other's. So each worker starts its own bus and
keyring before its first test (``start``) and points ``DBUS_SESSION_BUS_ADDRESS`` at it; the
``paddock`` processes its tests start inherit it. A run without workers keeps the run's bus.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from jeepney import DBusAddress, new_method_call
from jeepney.io.blocking import open_dbus_connection

from tests.framework.waits import wait_until

SECRETS = "org.freedesktop.secrets"


@dataclass
class PrivateBus:
    folder: Path
    address: str = ""
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.processes.clear()
        shutil.rmtree(self.folder, ignore_errors=True)


def start() -> PrivateBus:
    """A new session bus and an unlocked gnome-keyring on it (its keyrings in a temporary
    folder, a throwaway password); ``DBUS_SESSION_BUS_ADDRESS`` now names it."""
    bus = PrivateBus(Path(tempfile.mkdtemp(prefix="paddock-bus-")))
    try:
        daemon = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1"],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        bus.processes.append(daemon)
        assert daemon.stdout is not None
        bus.address = daemon.stdout.readline().strip()
        if not bus.address:
            raise RuntimeError("dbus-daemon printed no address")
        run = bus.folder / "run"
        run.mkdir(mode=0o700)
        env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": bus.address, "XDG_DATA_HOME": str(bus.folder),
               "XDG_RUNTIME_DIR": str(run)}  # fmt: skip
        keyring = subprocess.Popen(
            ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
        )  # fmt: skip
        bus.processes.append(keyring)
        assert keyring.stdin is not None and keyring.stdout is not None
        keyring.stdin.write(f"throwaway-{secrets.token_hex(8)}")
        keyring.stdin.close()
        keyring.stdout.readline()  # GNOME_KEYRING_CONTROL=…: it has started
        _wait_for_name(bus.address, SECRETS)
    except BaseException:
        bus.stop()
        raise
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = bus.address
    return bus


def _wait_for_name(address: str, name: str, timeout: float = 30) -> None:
    """Until ``name`` has an owner on the bus at ``address``."""
    dbus = DBusAddress("/org/freedesktop/DBus", bus_name="org.freedesktop.DBus", interface="org.freedesktop.DBus")
    conn = open_dbus_connection(address)
    try:
        owned = lambda: conn.send_and_get_reply(new_method_call(dbus, "NameHasOwner", "s", (name,))).body[0]  # noqa: E731
        wait_until(owned, timeout=timeout, what=f"{name} on the worker's session bus")
    finally:
        conn.close()
