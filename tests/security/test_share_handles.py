"""One command cannot break the shared folder by making more files than the host lets the
share daemon hold open (#17, class 6).

virtiofsd keeps a descriptor per file the guest has looked up. Real: the VM, the jailed
virtiofsd and ``paddock sandbox exec``; the app runs with a low open-files limit (1,024, the
usual soft limit; many distributions' default hard limit is 4,096) so that the limit is reached in
seconds, and the command makes more than twice that many files. Before the fix the share answered
"bad file descriptor" or "too many open files" from about the 1,000th file on (the 4,000th at
4,096: the limit, not the number, is what the test is about, and a lower one makes it 4 times
quicker under emulation).
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.vm
LIMIT = 1024
FILES = 2400  # more than twice LIMIT

MAKE = f"""
import os
for d in range(3):
    os.makedirs(f"many/{{d}}", exist_ok=True)
    for i in range({FILES} // 3):
        with open(f"many/{{d}}/f{{i}}.txt", "w") as fh:
            fh.write(str(i))
print("made", sum(len(fs) for _, _, fs in os.walk("many")))
print("read", sum(len(open(os.path.join(r, f)).read()) > 0 for r, _, fs in os.walk("many") for f in fs))
"""


def _low_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


def test_many_files_in_one_command_leave_the_share_working(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "paddock.cli", "sandbox", "exec", "--quiet", "--folder", str(folder), "--",
         "python3", "-c", MAKE],
        capture_output=True, text=True, timeout=600, preexec_fn=_low_limit,
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout[-500:], proc.stderr[-1500:])
    assert f"made {FILES}" in proc.stdout and f"read {FILES}" in proc.stdout, proc.stdout
    on_host = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.txt"))
    assert len(on_host) == FILES
    assert (folder / f"many/2/f{FILES // 3 - 1}.txt").read_text() == str(FILES // 3 - 1)
