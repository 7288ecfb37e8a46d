"""Skill headers are YAML front matter, read with PyYAML: quoted and folded values mean what YAML
says (the old line-by-line reading took ``description: >`` for the description ">"), and a header
that is not YAML leaves the skill named by its folder, without a description.

Real files in a profile folder; no fakes.
"""

from __future__ import annotations

from pathlib import Path

from paddock.assistant import skills


def _skill(profile: Path, folder: str, text: str) -> None:
    path = profile / "skills" / folder / "SKILL.md"
    path.parent.mkdir(parents=True)
    path.write_text(text)


def test_headers_are_read_as_yaml(tmp_path: Path) -> None:
    folded = "description: >\n  Drawing maps: regions,\n  borders and labels.\n"
    _skill(tmp_path, "a", f'---\nname: "maps"\n{folded}---\n# x\n')
    _skill(tmp_path, "b", "---\nname: [not, text]\ndescription: 'Quoted: with a colon'\n---\n")
    _skill(tmp_path, "c", "---\nname: broken: yaml: here\n  - no\n---\n")
    _skill(tmp_path, "d", "no header at all\n")
    found = {s.name: s.description for s in skills.available(tmp_path)}
    assert found == {
        "maps": "Drawing maps: regions, borders and labels.",
        "b": "Quoted: with a colon",  # a name that is not text: the folder's
        "c": "",
        "d": "",
    }


def test_the_built_in_skills_keep_their_names(tmp_path: Path) -> None:
    skills.install_built_in(tmp_path)
    names = [s.name for s in skills.available(tmp_path)]
    assert names == ["charts", "documents", "pdf", "slides", "spreadsheets"]
    assert all(s.description for s in skills.available(tmp_path))
