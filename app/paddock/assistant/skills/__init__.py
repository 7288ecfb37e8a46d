"""Skills: short instruction files the model loads only when a task needs them.

Each skill is ``skills/<name>/SKILL.md`` in the agent profile (Paddock's own
``.claude`` folder, read-only in the guest), with a front matter naming it and
saying in one line when it helps. The system prompt lists names and lines only;
the ``load_skill`` tool returns a whole file. Paddock's own skills (the ``*.md``
beside this file) are copied into the profile when missing, and people can add
their own folders there. The host reads them, after resolving the path inside
the profile's ``skills`` folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from paddock.assistant.labels import untrusted
from paddock.core.errors import PaddockError
from paddock.core.paths import profile_dir

BUILT_IN = Path(__file__).parent
MAX_SKILL_CHARS = 20_000
_FRONT = re.compile(r"\A---\n(.*?)\n---\n", re.S)


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    path: Path


def _parse(path: Path) -> Skill | None:
    try:
        text = path.read_text(errors="replace")[:MAX_SKILL_CHARS]
    except OSError:
        return None
    fields = _front_matter(text)
    name = fields.get("name") or path.parent.name
    return Skill(name.strip(), fields.get("description", "").strip()[:300], path)


def _front_matter(text: str) -> dict[str, str]:
    """The text fields of the YAML between the leading ``---`` lines (none when it is missing or
    is not YAML: the skill is then named by its folder and has no description)."""
    m = _FRONT.match(text)
    if m is None:
        return {}
    try:
        fields = yaml.safe_load(m.group(1))
    except yaml.YAMLError:
        return {}
    if not isinstance(fields, dict):
        return {}
    return {str(k): v for k, v in fields.items() if isinstance(v, str)}


def skills_root(profile: Path | None = None) -> Path:
    return (profile or profile_dir()) / "skills"


def install_built_in(profile: Path | None = None) -> None:
    """Copy Paddock's skills into the profile where a skill of that name is missing."""
    root = skills_root(profile)
    for src in sorted(BUILT_IN.glob("*.md")):
        skill = _parse(src)
        if skill is None:
            continue
        dest = root / skill.name / "SKILL.md"
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            dest.write_text(src.read_text())


def available(profile: Path | None = None) -> list[Skill]:
    root = skills_root(profile)
    found = (_parse(p) for p in sorted(root.glob("*/SKILL.md")) if p.is_file() and not p.is_symlink())
    return [s for s in found if s is not None]


def index(profile: Path | None = None) -> str:
    """The lines the system prompt carries: one per skill."""
    skills = available(profile)
    if not skills:
        return ""
    lines = "\n".join(f"- {s.name}: {s.description}" for s in skills)
    return (
        "\n\nSkills (instructions for particular kinds of work, from the person's profile). Before you make "
        "or change such files, call load_skill with the skill's name:\n" + untrusted("skills in the profile", lines)
    )


def load(name: str, profile: Path | None = None) -> str:
    root = skills_root(profile).resolve()
    for skill in available(profile):
        if skill.name == name:
            real = skill.path.resolve()
            if root not in real.parents:
                break
            return real.read_text(errors="replace")[:MAX_SKILL_CHARS]
    known = ", ".join(s.name for s in available(profile)) or "none"
    raise PaddockError(f"There is no skill called {name!r}. Skills: {known}.")
