"""What a tool-call card says, in plain words (no Qt): a title while it runs and once it is done
("Running a command" → "Ran a command", "Made report.md"), and the command's output as a person
reads it (no "stderr", no "exit status"). The CLI keeps the tools' own descriptions."""

from __future__ import annotations

import re
from typing import Any

from paddock.core.text import shown

_TITLES: dict[str, tuple[str, str]] = {  # tool -> (while running, once done); {path}, {pattern}
    "run_command": ("Running a command", "Ran a command"),
    "write_file": ("Making {path}", "Made {path}"),
    "edit_file": ("Changing {path}", "Changed {path}"),
    "read_file": ("Reading {path}", "Read {path}"),
    "read_document": ("Reading {path}", "Read {path}"),
    "list_files": ("Looking at the files in {path}", "Looked at the files in {path}"),
    "search_files": ("Searching for “{pattern}” in {path}", "Searched for “{pattern}” in {path}"),
    "load_skill": ("Looking up how to do this well", "Looked up how to do this well"),
    "remember": ("Saving a note for later sessions", "Saved a note for later sessions"),
}


PURPOSE_CHARS = 160  # of the model's one-line purpose shown as a card's title


def purpose(args: dict[str, Any]) -> str:
    """The one sentence the model gave for a command (``purpose`` in the tool's input), escaped and
    cut to one line; empty when it gave none."""
    said = args.get("purpose")
    if not isinstance(said, str):
        return ""
    line = " ".join(said.split())  # one line, whatever the model sent
    if len(line) > PURPOSE_CHARS:
        line = line[: PURPOSE_CHARS - 1].rstrip() + "…"
    return shown(line)


def card_title(name: str, args: dict[str, Any], *, running: bool, ok: bool = True) -> str:
    """The card's first line: what the step does (the model's purpose for a command, else what was
    done and to which file)."""
    now, done = _TITLES.get(name, ("Using a tool", "Used a tool"))
    path, pattern = str(args.get("path") or "the folder")[:120], str(args.get("pattern", ""))[:60]
    words = {"path": shown(path), "pattern": shown(pattern)}  # the model chose them: escaped
    title = purpose(args) if name == "run_command" else ""
    title = title or (now if running else done).format(**words)
    return f"{title} (that did not work)" if not running and not ok else title


def card_input(name: str, args: dict[str, Any]) -> str:
    """What the call was given, for Details."""
    if name == "run_command":
        return f"Command: {args.get('command', '')}"  # the purpose is the card's title
    if name == "write_file":
        return f"File: {args.get('path', '')}"
    return "\n".join(f"{k.replace('_', ' ')}: {str(v)[:2000]}" for k, v in args.items())


_STATUS = re.compile(r"^\$ .*?\n\[(?P<status>[^\]\n]*)\]\n", re.DOTALL)


def _status(status: str) -> str:
    if m := re.fullmatch(r"exit status (\d+)", status):
        return "It finished." if m.group(1) == "0" else f"It finished with an error (code {m.group(1)})."
    if status.startswith("was killed"):
        return "It was stopped before it finished."
    if m := re.fullmatch(r"timed out after (\S+) s and was stopped", status):
        return f"It took longer than {m.group(1)} seconds and was stopped."
    return status


def card_output(name: str, detail: str) -> str:
    """A finished call's output for Details; a command's in plain words."""
    if name != "run_command" or not (m := _STATUS.match(detail)):
        return detail.strip() or "(nothing)"
    rest = detail[m.end() :]
    out, _, err = rest.partition("\n--- stderr ---\n")
    out = out.removeprefix("--- stdout ---\n").strip()
    parts = [_status(m.group("status"))]
    parts.append(f"What it printed:\n{out}" if out else "It printed nothing.")
    if err.strip():
        parts.append(f"Its messages:\n{err.strip()}")
    return "\n\n".join(parts)


def took(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    return f"{seconds // 60:.0f} min {seconds % 60:.0f} s"
