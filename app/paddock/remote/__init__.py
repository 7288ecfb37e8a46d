"""Sandbox hosts over SSH: the VM runs on a server the managed policy names (paramiko only here).

The person's machine keeps the egress gateway, the keychain and the session token; the server
runs the VM with its installed Paddock (``paddock remote serve``) and relays the guest agent's
byte stream over the SSH channel, which carries gRPC and with it the guest's egress.
"""

from paddock.remote.choose import assigned, can_virtualise, least_loaded, named
from paddock.remote.machine import RemoteMachine
from paddock.remote.ssh import Connection, HostKeyRefused, RemoteError, fingerprint
from paddock.remote.sync import FolderSync, SyncReport, safe_rel

__all__ = [
    "Connection",
    "FolderSync",
    "HostKeyRefused",
    "RemoteError",
    "RemoteMachine",
    "SyncReport",
    "assigned",
    "can_virtualise",
    "fingerprint",
    "least_loaded",
    "named",
    "safe_rel",
]
