"""`paddock audit | policy | memory | keys | doctor`: the commands that need no sandbox."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from paddock.cli.out import err as _err


async def _audit(ns: argparse.Namespace) -> int:
    import json
    from datetime import datetime

    from paddock.audit import AuditLog

    if ns.audit_command == "verify":
        return _audit_verify(ns)
    log = AuditLog()
    since = None
    if ns.since:
        try:
            since = float(ns.since)
        except ValueError:
            try:
                since = datetime.fromisoformat(ns.since).timestamp()
            except ValueError:
                _err(f"--since takes a date and time such as 2026-11-22T09:00 or seconds since 1970, not {ns.since!r}")
                return 2
    for rec in log.records(since):
        sys.stdout.write(json.dumps(rec) + "\n")  # ASCII: valid JSON that no terminal acts on
    return 0


def _audit_verify(ns: argparse.Namespace) -> int:
    from paddock.audit import AuditLog
    from paddock.credentials import Keychain, audit_key
    from paddock.policy import PolicyError, load

    anchors: dict[int, str] = {}
    for anchor in ns.anchor or []:
        seq, _, digest = anchor.partition(":")
        if not (seq.isdigit() and len(digest) == 64):
            _err(f"--anchor takes RECORD:HASH as the collector received them (e.g. 42:3fa9…), not {anchor!r}")
            return 2
        anchors[int(seq)] = digest.lower()
    try:
        fallback = load().keychain_fallback
    except PolicyError:
        fallback = None
    key = audit_key(Keychain(allowed_fallback=fallback))
    log = AuditLog(key=key.key)
    if key.replaced:
        log.set_aside("key-lost")
    result = log.verify(anchors)
    for aside in log.set_aside_folders():
        why = "signed by an audit key the keychain lost" if aside.name.startswith("key-lost") else "from before"
        print(f"note: an earlier log was set aside, readable but no longer checked ({why}): {aside}")
    if result.ok:
        checked = f", {len(anchors)} collector record(s) matched" if anchors else ""
        print(f"The audit log is intact ({result.records} records{checked}; {log.folder}; key in {key.where}).")
        return 0
    _err(f"the audit log does not verify: {result.problem} ({log.folder}; checked with the key in {key.where})")
    return 1


def _owner(path: Path) -> int:
    try:
        return path.resolve().stat().st_uid
    except OSError:
        return os.geteuid()


async def _policy_check(ns: argparse.Namespace) -> int:
    from paddock.policy import MANAGED_FILE, PolicyError, credential_warnings, load
    from paddock.policy.effective import check_admin_owned

    if ns.file:
        path = Path(ns.file)
        try:
            check_admin_owned(path)
        except PolicyError as exc:
            print(f"note: installed as the managed policy, this file would be refused: {exc.message}")
        except OSError:
            pass
        # Validate the content whoever owns the file (a draft is the admin's own before it is installed).
        policy = load(managed=path, admin_uid=_owner(path))
        print(f"{path} is valid. The effective policy with it as the managed policy:\n")
    else:
        policy = load()
        tiers = ", ".join(f"{t.name} ({t.path})" for t in policy.tiers) or f"none (no {MANAGED_FILE})"
        print(f"Policy files in effect: {tiers}\n")
    rows = policy.describe()
    width = max(len(r[0]) for r in rows)
    for key, value, tier in rows:
        print(f"  {key.ljust(width)}  {value}    [{tier}]")
    for warning in credential_warnings(policy.grants):
        print(f"\nwarning: {warning}")
    return 0


async def _memory(ns: argparse.Namespace) -> int:
    import time

    from paddock.assistant.memory import MemoryStore
    from paddock.core.paths import profile_dir

    store = MemoryStore()
    one_note = {
        "forget": (store.forget, "Deleted note {}."),
        "share": (store.share, "Note {} is now loaded on every folder (until it expires or you delete it)."),
    }
    if ns.memory_command in one_note:
        act, said = one_note[ns.memory_command]
        if act(ns.id):
            print(said.format(ns.id))
            return 0
        _err(f"there is no note {ns.id}")
        return 1
    if ns.memory_command == "purge-expired":
        print(f"Deleted {store.purge_expired()} expired notes.")
        return 0
    notes = store.list(include_expired=True)
    print(f"Agent profile: {profile_dir()} (read-only inside the sandbox)")
    others = sorted(
        str(p.relative_to(profile_dir()))
        for p in profile_dir().rglob("*")
        if p.is_file() and "memory" not in p.relative_to(profile_dir()).parts
    )
    print("Files the agent can read there: " + (", ".join(others) if others else "none"))
    if not notes:
        print("No saved notes.")
    for m in notes:
        day = time.strftime("%Y-%m-%d", time.localtime(m.created))
        until = "EXPIRED" if m.expired else "until " + time.strftime("%Y-%m-%d", time.localtime(m.expires))
        where = "every folder" if m.scope == "all" else f"only {m.folder}"
        print(f"\n[{m.id}] saved {day} by session {m.session} on {m.folder} ({until}; loaded on {where})\n    {m.text}")
    return 0


async def _keys(ns: argparse.Namespace) -> int:
    import getpass

    from paddock.credentials import backend_status
    from paddock.egress import TokenAuthority
    from paddock.policy import load as load_policy
    from paddock.session.model_choice import endpoint, key_state
    from paddock.session.model_choice import keychain as keychain_for

    cmd = ns.keys_command
    if cmd == "revoke-sessions":
        TokenAuthority().revoke_all()
        print("Done: every session so far has lost its internet access, running ones included.")
        return 0
    policy = load_policy()
    if cmd == "status":
        status = backend_status()
        print(f"Keychain: {status.detail}.")
        print("Model services your organisation allows (the first is the usual one):")
        for e in policy.model_endpoints:
            models = ", ".join(e.models) if e.models is not None else "any model"
            where = f" at {e.base_url}" if e.base_url else ""
            print(f"  {e.name}{where} ({models}): {key_state(policy, e)}")
        if not policy.model_endpoints:
            print("  none: your organisation allows no model service")
        return 0
    e = endpoint(policy, ns.endpoint)
    if e.key is None:
        _err(f"the model endpoint {e.name!r} needs no key (policy names no keychain entry for it)")
        return 1
    chain = keychain_for(policy)
    if cmd == "remove":
        gone = chain.remove(e.key)
        print(f"The key for {e.name!r} was removed." if gone else f"There was no key for {e.name!r} to remove.")
        return 0
    # set: from a prompt on a terminal, else from standard input; never from the command line.
    tty = sys.stdin.isatty()
    secret = getpass.getpass(f"API key for {e.name!r} (input is hidden): ") if tty else sys.stdin.readline()
    chain.set(e.key, secret)
    print(f"The key for {e.name!r} is stored in the keychain (entry {e.key}).")
    return 0


async def _doctor(ns: argparse.Namespace) -> int:
    from paddock.session.doctor import run_checks

    checks = await run_checks(probe=not ns.no_probe)
    worst = 0
    for c in checks:
        mark = "ok " if c.ok else ("!! " if c.required else "?? ")
        print(f"{mark} {c.name}: {c.detail}")
        if c.fix:
            print(f"    → {c.fix}")
        if not c.ok and c.required:
            worst = 1
    print("\nAll set." if worst == 0 else "\nSome things need fixing before Paddock can run (see → above).")
    return worst


async def _support(ns: argparse.Namespace) -> int:
    from paddock.desk.support import write_bundle

    path = await write_bundle(ns.out)
    print(f"The details for support are in {path}.")
    print("Send that file to whoever looks after Paddock for you: it holds no file contents and no keys.")
    return 0


def add_support_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sup = sub.add_parser("support", help="write the details to send for help (no file contents, no keys)")
    sup.add_argument("--out", metavar="DIR", type=Path, help="the folder to write the file to")
    sup.set_defaults(handler=_support)
