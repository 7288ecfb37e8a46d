"""Settings in sentences (no Qt): the effective policy as what it lets the assistant do ("Your
organisation lets the assistant reach: …") instead of its keys, and the audit log as rows a person
reads (when, what happened, about what) with the groups its filter offers and a CSV export. The
raw records stay what ``paddock audit export`` prints."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paddock.core.text import shown
from paddock.policy import EffectivePolicy

_WHO = {"managed": "your organisation", "recommended": "your organisation (a default you may change)",
        "user": "you", "folder": "this folder's settings", "built-in": "Paddock", "default": "Paddock"}  # fmt: skip


def who_set(sources: Mapping[str, str], *keys: str) -> str:
    """Who set these settings, in words (the strongest tier that set any of them)."""
    tiers = {t.strip() for k in keys for t in sources.get(k, "default").split(",")}
    for tier in ("managed", "recommended", "user", "folder"):
        if tier in tiers:
            return _WHO[tier]
    return "Paddock"


def place(path: Path) -> str:
    """A folder as a person writes it: under the home folder, from ``~``."""
    try:
        return str(Path("~") / path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def _few(items: list[str], n: int = 4) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def _sites(policy: EffectivePolicy) -> str:
    if not policy.grants:
        return "The assistant cannot reach the internet."
    sites = []
    for g in policy.grants:
        reads = all(m in ("GET", "HEAD") for m in g.methods)
        site = g.host if g.port in (80, 443) else f"{g.host}:{g.port}"
        sites.append(f"{site} ({'read only' if reads else 'read and send'})")
    return f"Your organisation lets the assistant reach: {', '.join(sites)}."


def _models(policy: EffectivePolicy) -> str:
    services = []
    for e in policy.model_endpoints:
        models = "any model" if e.models is None else _few(list(e.models), 3)
        services.append(f"{e.name} ({models})")
    said = f"The assistant may use these model services: {_few(services)}." if services else ""
    said = said or "No model service is allowed: the assistant cannot work until your organisation names one."
    if policy.default_model:
        said += f" The usual model is {policy.default_model}."
    return said


def policy_sentences(policy: EffectivePolicy) -> list[tuple[str, str]]:
    """(sentence, who set it) for the Settings page: what the policy in effect lets the assistant do."""
    s, rows = policy.sources, []
    rows.append((_sites(policy), who_set(s, "grants")))
    rows.append(
        (
            "Before it reaches any other site, it asks you first."
            if policy.allow_asking
            else "It cannot ask you to reach any other site.",
            who_set(s, "allow_asking"),
        )
    )
    if policy.allowed_roots is None:
        folders = "You can give the assistant any folder of your own."
    else:
        folders = f"You can give the assistant only folders inside: {_few([place(r) for r in policy.allowed_roots])}."
    rows.append((folders, who_set(s, "allowed_roots")))
    denied = [place(p) for p in policy.denied_paths]
    rows.append((f"Paddock never shares these places with the assistant: {_few(denied)}.", who_set(s, "denied_paths")))
    if policy.read_only:
        rows.append(
            (f"The assistant may only read, never change: {_few([place(p) for p in policy.read_only])}.",
             who_set(s, "read_only"))
        )  # fmt: skip
    rows.append((_models(policy), who_set(s, "model_endpoints", "models_allowed", "default_model")))
    rows.append(
        (
            "A folder's own scripts may run, inside the sandbox only, once you trust the folder."
            if policy.allow_folder_hooks
            else "A folder's own scripts never run.",
            who_set(s, "allow_folder_hooks"),
        )
    )
    send = (
        "After the assistant reads a sensitive file (a password file, a key), nothing is sent out."
        if policy.on_sensitive_send == "refuse"
        else "After the assistant reads a sensitive file (a password file, a key), it asks you before anything "
        "is sent out."
    )
    rows.append((send, who_set(s, "sensitive_paths", "on_sensitive_send")))
    hosts = [h.name for h in policy.sandbox_hosts]
    rows.append(
        (
            f"The sandbox may run on these computers: {_few(hosts)}."
            if hosts
            else "The sandbox runs on this computer.",
            who_set(s, "sandbox_hosts"),
        )
    )
    record = (
        f"A copy of the activity record goes to your organisation ({policy.otlp_endpoint})."
        if policy.otlp_endpoint
        else "The activity record stays on this computer."
    )
    rows.append((f"{record} It keeps up to {policy.max_log_mb} MB here.", who_set(s, "otlp_endpoint", "max_log_mb")))
    budget = (
        f"Up to {policy.undo_budget_mb} MB" if policy.undo_budget_mb is not None else "Up to a tenth of the free disk"
    )
    rows.append((f"{budget} is kept of earlier versions of files, for Undo.", who_set(s, "undo_budget_mb")))
    return rows


# ---------------------------------------------------------------------- the audit log


GROUPS = ("Everything", "Conversation", "Programs", "Files", "Internet", "Rules and undo")
_KINDS: dict[str, tuple[str, str]] = {  # record kind -> (group, what happened)
    "session.started": ("Conversation", "A folder was opened"),
    "session.ended": ("Conversation", "The folder was closed"),
    "turn": ("Conversation", "You sent a message"),
    "tool.call": ("Conversation", "The assistant took a step"),
    "tool.result": ("Conversation", "A step ended"),
    "guest.process.started": ("Programs", "A program started in the sandbox"),
    "guest.process.exited": ("Programs", "A program ended"),
    "guest.file.written": ("Files", "A file was written"),
    "guest.file.removed": ("Files", "A file was removed"),
    "guest.file.sensitive_read": ("Files", "A sensitive file was read"),
    "session.tainted": ("Internet", "Sending out is held after a sensitive file was read"),
    "egress.decision": ("Internet", "A request to the internet"),
    "egress.tripwire": ("Internet", "A decoy secret was sent out: your organisation is told"),
    "token.minted": ("Internet", "The sandbox was given its internet pass"),
    "token.revoked": ("Internet", "The sandbox's internet pass was cut off"),
    "policy.decision": ("Rules and undo", "A rule was applied"),
    "undo.point": ("Rules and undo", "A restore point was made"),
    "undo.restored": ("Rules and undo", "Files were put back"),
}


@dataclass(frozen=True)
class AuditRow:
    when: str  # local time, to the second
    group: str
    what: str  # what happened, in words
    about: str  # the file, program, site or step it is about
    session: str  # a short id of the session it belongs to
    record: dict[str, Any]  # the record as written (for support: the export's JSON column)


def _exited(a: Mapping[str, Any]) -> str:
    code = a.get("process.exit.code")
    return "ended normally" if code == 0 else "stopped before it finished" if code is None else f"ended with {code}"


def _request(a: Mapping[str, Any]) -> str:
    verdict = "allowed: " if a.get("paddock.egress.allowed") else "refused: "
    return f"{verdict}{a.get('server.address', '')}{a.get('url.path', '')}"


_ABOUT: dict[str, Callable[[Mapping[str, Any]], str]] = {  # record kind -> what it is about
    "guest.process.started": lambda a: " ".join(str(x) for x in a.get("process.command_args", []))[:200],
    "guest.process.exited": _exited,
    "egress.decision": _request,
    "egress.tripwire": lambda a: f"{a.get('server.address', '')}{a.get('url.path', '')}",
    "tool.call": lambda a: str(a.get("paddock.tool.summary", "")),
    "tool.result": lambda a: "did not work" if a.get("paddock.tool.is_error") else "worked",
    "session.started": lambda a: str(a.get("paddock.folder", "")),
    "session.ended": lambda a: str(a.get("paddock.outcome", "")),
    "policy.decision": lambda a: (
        ("allowed: " if a.get("paddock.policy.allowed") else "refused: ") + str(a.get("paddock.policy.subject", ""))
    ),
}


def _about(kind: str, a: Mapping[str, Any]) -> str:
    if "file.path" in a:
        return str(a["file.path"])
    about = _ABOUT.get(kind)
    return about(a) if about is not None else ""


def audit_rows(records: Iterable[Mapping[str, Any]]) -> list[AuditRow]:
    """The records as rows a person reads, newest first. Guest-provided text is escaped."""
    rows = []
    for r in records:
        kind = str(r.get("kind", ""))
        group, what = _KINDS.get(kind, ("Rules and undo", "Something was recorded"))
        attributes = r.get("attributes")
        a = attributes if isinstance(attributes, Mapping) else {}
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(r.get("time_unix", 0) or 0)))
        rows.append(AuditRow(when, group, what, shown(_about(kind, a)), str(r.get("session_id", ""))[:8], dict(r)))
    rows.reverse()
    return rows


def filter_rows(rows: Iterable[AuditRow], group: str = "Everything", text: str = "") -> list[AuditRow]:
    """The rows of ``group`` whose words contain ``text`` (case-insensitive)."""
    needle = text.strip().casefold()
    return [
        r
        for r in rows
        if (group in ("", "Everything") or r.group == group)
        and (not needle or needle in f"{r.when} {r.what} {r.about} {r.session}".casefold())
    ]


def _cell(text: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula (guest text can start with '=')."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export_rows(rows: Iterable[AuditRow], path: Path) -> int:
    """Write ``rows`` as a CSV file (a spreadsheet opens it); returns how many."""
    import json

    n = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["when", "group", "what happened", "about", "session", "record"])
        for r in rows:
            cells = [r.when, r.group, r.what, r.about, r.session, json.dumps(r.record, ensure_ascii=False)]
            out.writerow([_cell(c) for c in cells])
            n += 1
    return n
