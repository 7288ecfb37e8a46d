"""Plain words for the window (no Qt): the host checks, sandbox failures and unexpected errors as
a person reads them, each with what to do; the technical text is kept apart for "Copy details".

``JARGON`` is the list of words the window never shows (tests/ui/test_plain_words.py scans every
visible string for them). ``say`` passes a message through when it has none of them and replaces
it with a plain sentence when it has.
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass

from paddock.core.errors import PaddockError
from paddock.session.doctor import Check, FirstRun

JARGON: tuple[str, ...] = (
    "QEMU", "TCG", "KVM", "virtiofs", "virtiofsd", "gRPC", "signal", "exception", "traceback", "stderr",
    "stdout", "mitmproxy", "mitmdump", "bubblewrap", "bwrap", "namespace", "errno", "hypervisor", "vsock",
    "QMP", "sysctl", "AppArmor", "egress", "exit code", "exit status", "SIGKILL", "RLIMIT", "kernel", "stack trace",
    "OSError", "RuntimeError", "initramfs", "guest agent", "systemd",
)  # fmt: skip
_JARGON = re.compile(r"\b(" + "|".join(re.escape(w) for w in JARGON) + r")\b", re.IGNORECASE)

# Internal terms no person-facing text says, on a screen or from the command line (the window also
# never says JARGON; the CLI's admin commands, such as doctor, may name the programs to install).
INTERNAL: tuple[str, ...] = (
    "session token", "ENDPOINT:MODEL", "keyring.backends", "keyrings.alt", "Traceback", "stack trace",
    "SDK", "errno", "OSError", "RuntimeError", "KeyError", "ValueError", "argv", "NoneType",
)  # fmt: skip
_INTERNAL = re.compile(r"\b(" + "|".join(re.escape(w) for w in INTERNAL) + r")", re.IGNORECASE)


def internal_in(text: str) -> list[str]:
    """The internal terms in ``text`` (empty: a person can read it)."""
    return sorted({m.group(0) for m in _INTERNAL.finditer(text)})


SUPPORT = "If it happens again, press Copy details and send them to whoever looks after Paddock for you."


def jargon_in(text: str) -> list[str]:
    """The jargon words in ``text`` (empty: it is plain)."""
    return sorted({m.group(0) for m in _JARGON.finditer(text)})


def say(text: str, fallback: str) -> str:
    """``text`` when a person can read it, else ``fallback``."""
    return fallback if jargon_in(text) else text


@dataclass(frozen=True)
class Problem:
    """An error as the window shows it: what happened and what to do, and the details for support
    (empty when the message says it all)."""

    message: str
    details: str = ""

    def for_support(self) -> Problem:
        """The same, saying what to do with the details if it happens again."""
        return self if SUPPORT in self.message else Problem(f"{self.message} {SUPPORT}", self.details)


def problem(exc: BaseException) -> Problem:
    """A failed call in plain words. A ``PaddockError`` already is one unless it names internals."""
    details = "".join(traceback.format_exception(exc)).strip()
    if isinstance(exc, PaddockError):
        text = exc.message if not exc.hint else f"{exc.message} {exc.hint}"
        if not jargon_in(text):
            return Problem(text)
    return Problem(f"Something unexpected went wrong, and that step did not happen. Try again. {SUPPORT}", details)


def sandbox_failure(reason: str) -> Problem:
    """Why the sandbox stopped: the reason when plain, else what happened and what to do."""
    plain = "The sandbox stopped working. Your files are safe: press Restart to start it again."
    return Problem(plain, reason) if jargon_in(reason) else Problem(f"The sandbox stopped working: {reason}")


def assistant_failure(message: str) -> Problem:
    plain = f"The assistant stopped because of an unexpected problem. Send your message again. {SUPPORT}"
    return Problem(plain, message) if jargon_in(message) else Problem(f"The assistant stopped: {message}")


# ---------------------------------------------------------------------- first run


@dataclass(frozen=True)
class PlainCheck:
    name: str
    ok: bool
    required: bool
    says: str  # what was found, in a few words
    todo: str  # one sentence: what to do (empty when nothing needs doing)
    details: str  # the technical finding, for support


_ADMIN_TOOLS = "Ask your administrator to install Paddock's sandbox programs (the installation guide lists them)."
_CHECKS: dict[str, tuple[str, str]] = {  # doctor's name -> (plain name, what to do when it fails)
    "QEMU": ("Sandbox program", _ADMIN_TOOLS),
    "Bubblewrap": ("Folder protection", _ADMIN_TOOLS),
    "Host tools": ("Sandbox programs", _ADMIN_TOOLS),
    "Folder sharing (virtiofsd)": (
        "Folder sharing",
        "Ask your administrator to let ordinary accounts share folders with Paddock (the installation guide says how).",
    ),
    "Sandbox image": ("Sandbox system", "Ask your administrator to install Paddock's sandbox, then press Check again."),
    "Open files": ("Open-files limit", "Ask your administrator to raise the open-files limit for your account."),
    "Egress gateway (mitmproxy)": (
        "Internet gateway",
        "Nothing to do unless the assistant needs the internet: then ask your administrator to install the gateway.",
    ),
    "Egress grants": (
        "Internet permissions",
        "Nothing to do yourself: your administrator should say which service each internet permission with a key "
        "is for.",
    ),
    "Accelerator": ("Speed", ""),
    "Keychain": ("Keychain", "Unlock your desktop's keychain (for example GNOME Keyring), then press Check again."),
}  # fmt: skip


def plain_check(check: Check) -> PlainCheck:
    name, todo = _CHECKS.get(check.name, (check.name, "Ask your administrator to look at this check."))
    if check.name == "Accelerator":
        fast = "hardware" in check.detail and "software" not in check.detail
        says = "Fast start." if fast else "Works; the sandbox takes a few seconds longer to start on this computer."
        return PlainCheck(name, True, check.required, says, "", check.detail)
    says = "Ready." if check.ok else ("Not working." if check.required else "Not available.")
    return PlainCheck(name, check.ok, check.required, says, "" if check.ok else todo, check.detail)


def plain_checks(state: FirstRun) -> list[PlainCheck]:
    return [plain_check(c) for c in state.checks]


def conflicts_notice(names: list[str]) -> str:
    """The files a sandbox host's command changed that the person had changed here meanwhile."""
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return (
        f"Kept your own version of {shown}: you changed it on this computer while the sandbox host "
        "changed it too. The sandbox's version was not brought back."
    )
