"""House rules that review should not have to remember. Exit 1 naming each breach.

1. No ``shell=True`` and no ``os.system`` in the package: arguments stay a list.
2. No machine paths from a developer's computer in tracked files.
3. Nothing that looks like a real secret (test keys are generated at test time).
4. Generated gRPC code is imported only through ``paddock.guest`` and by the guest agent (also
   an import contract, which cannot see the guest agent).
5. Nothing in the product reads a ``PADDOCK_TEST_*`` variable: a switch anyone can set in the
   environment must not change what the product does (tests set state in-process instead).

Size is not a rule here: ruff bounds each function (mccabe complexity, branches, statements,
returns, arguments; ``[tool.ruff.lint]`` in pyproject.toml), and a module is split by job, not by
its line count (the 400-line rule this replaced made mixins and ``# fmt: skip`` lines).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET = re.compile(r"sk-ant-api0\d-[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY-----")
MACHINE_PATH = re.compile(
    r"(?<![\w.])/(?:root|home/(?!agent/)[a-z][\w-]*|Users/[A-Za-z][\w-]*)/"
)  # /home/agent: the guest
SELF = Path(__file__).resolve()
GENERATED = re.compile(r"^\s*(?:from|import)\s+paddock\.guest\.v1\b", re.MULTILINE)


def tracked() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / p for p in out.decode().split("\0") if p]


def main() -> int:
    problems: list[str] = []
    for path in tracked():
        if path.resolve() == SELF or not path.is_file() or path.suffix in {".png", ".jpg"}:
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        rel = path.relative_to(ROOT)
        if SECRET.search(text):
            problems.append(f"{rel}: looks like a real secret or private key")
        for m in MACHINE_PATH.finditer(text):
            problems.append(f"{rel}: names a machine path ({m.group(0)}...)")
        in_package = str(rel).startswith("app/paddock/") and path.suffix == ".py" and "/v1/" not in str(rel)
        if in_package and "PADDOCK_TEST_" in text:
            problems.append(f"{rel}: reads a PADDOCK_TEST_ switch; tests set state in-process instead")
        if in_package and re.search(r"shell\s*=\s*True|os\.system\(", text):
            problems.append(f"{rel}: uses a shell; pass an argument list")
        generated_ok = str(rel).startswith(("app/paddock/guest/", "guest_image/agent/", "scripts/", "tests/"))
        if path.suffix == ".py" and not generated_ok and GENERATED.search(text):
            problems.append(f"{rel}: imports the generated gRPC code; go through paddock.guest")
    for p in problems:
        print(f"house rule: {p}", file=sys.stderr)
    if not problems:
        print("house rules: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
