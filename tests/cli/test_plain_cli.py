"""Plain words from the command line: the commands a person runs (doctor, keys, support, undo, the
help texts) and the errors they print say no internal term (``paddock.desk.INTERNAL``: "session
token", ``ENDPOINT:MODEL``, a keychain class name, a Python error's name…). The admin commands may
still name the programs to install (QEMU, virtiofsd): doctor is read by whoever sets Paddock up.

Real: the installed command in a subprocess, the real keychain (gnome-keyring), no VM.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from paddock.desk import INTERNAL, internal_in

PADDOCK = [sys.executable, "-m", "paddock.cli"]
APP = Path(__file__).resolve().parents[2] / "app" / "paddock"


def _run(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PADDOCK, *args], input=stdin, capture_output=True, text=True, timeout=120, env=env or os.environ.copy()
    )


PERSON_FACING = [
    ("--help",),
    ("run", "--help"),
    ("keys", "--help"),
    ("keys", "status"),
    ("undo", "--help"),
    ("support", "--help"),
    ("doctor", "--no-probe"),
    ("keys", "set", "--endpoint", "nope"),  # an error: no such model service
    ("undo", "--folder", "/nonexistent/folder", "--list"),  # an error: no such folder
]


@pytest.mark.parametrize("args", PERSON_FACING, ids=" ".join)
def test_person_facing_commands_say_no_internal_term(args: tuple[str, ...], tmp_path: Path) -> None:
    proc = _run(*args, stdin="not-a-real-key\n")
    said = proc.stdout + proc.stderr
    assert said.strip(), f"paddock {' '.join(args)} said nothing"
    assert not internal_in(said), f"paddock {' '.join(args)} says {internal_in(said)}:\n{said}"


def test_doctor_names_the_keychain_not_its_class() -> None:
    said = _run("doctor", "--no-probe").stdout
    [line] = [line for line in said.splitlines() if "Keychain" in line]
    assert "keyring." not in line and "Keyring:" not in line and "Keychain:" in line


def test_the_list_catches_what_it_is_for() -> None:
    assert internal_in("Keychain: keyring.backends.fail.Keyring (no keychain)") == ["keyring.backends"]
    assert internal_in("revoke every session token") == ["session token"]
    assert internal_in("--model ENDPOINT:MODEL") == ["ENDPOINT:MODEL"]
    assert internal_in("Your organisation lets the assistant reach: api.example.com.") == []
    assert {"session token", "ENDPOINT:MODEL"} <= set(INTERNAL)


def _error_texts() -> list[tuple[str, int, str]]:
    """The literal text of every error raised in Paddock's code that a person can be shown (all but
    the egress gateway's, which answer the sandbox, and the guest's)."""
    found = []
    for path in APP.rglob("*.py"):
        rel = path.relative_to(APP).as_posix()
        if rel.startswith(("guest/", "egress/")):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
                continue
            func = node.exc.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if not name.endswith("Error"):
                continue
            parts = [*node.exc.args, *(k.value for k in node.exc.keywords)]
            text = " ".join(
                n.value for a in parts for n in ast.walk(a) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            )
            found.append((rel, node.lineno, text))
    return found


def test_error_texts_say_no_internal_term() -> None:
    texts = _error_texts()
    assert len(texts) > 100  # the scan reads the code it means to
    bad = [f"{rel}:{line}: {internal_in(text)} in {text!r}" for rel, line, text in texts if internal_in(text)]
    assert not bad, "errors a person can see name internal terms:\n" + "\n".join(bad)
