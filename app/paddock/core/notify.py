"""A desktop notification (no Qt): the freedesktop Notifications service on the session bus, the
one every Linux desktop runs. Best effort: no bus or no service means no notification, never an
error in the window."""

from __future__ import annotations

import asyncio
import logging

from jeepney import DBusAddress, new_method_call
from jeepney.io.blocking import open_dbus_connection
from jeepney.wrappers import DBusErrorResponse

log = logging.getLogger(__name__)
NOTIFICATIONS = DBusAddress(
    "/org/freedesktop/Notifications",
    bus_name="org.freedesktop.Notifications",
    interface="org.freedesktop.Notifications",
)


def send(title: str, body: str, *, urgent: bool = False) -> bool:
    """Show a notification now (blocking, at most a few seconds); False when the desktop has no
    notification service. ``urgent``: the desktop keeps it until it is seen (a failed run)."""
    hints = {"urgency": ("y", 2 if urgent else 1)}
    message = new_method_call(
        NOTIFICATIONS, "Notify", "susssasa{sv}i", ("Paddock", 0, "paddock", title, body[:300], [], hints, 8000)
    )
    try:
        with open_dbus_connection(bus="SESSION") as bus:
            bus.send_and_get_reply(message, timeout=3)
        return True
    except (OSError, KeyError, TimeoutError, ValueError, DBusErrorResponse) as exc:
        log.info("no desktop notification (%s): %s", exc, title)
        return False


async def notify(title: str, body: str, *, urgent: bool = False) -> bool:
    """``send``, off the engine's loop."""
    return await asyncio.to_thread(send, title, body, urgent=urgent)
