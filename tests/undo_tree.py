"""A folder like the issue's (a big file, many small files in nested folders, office documents,
a link), the changes a turn makes to it, and a full account of a tree to compare: every name,
type, mode, mtime and a hash of every file's bytes."""

from __future__ import annotations

import hashlib
import os
import stat
import zipfile
from pathlib import Path

MB = 1024 * 1024

# The same changes as a shell script for the guest (see ``mutate``); the host file outside the
# folder is at HOSTFILE, whose path the guest cannot reach — the link it leaves points there.
GUEST_SCRIPT = r"""
set -e
cd /workspace
printf 'CHANGED-IN-PLACE' | dd of=big.bin bs=1 seek=1048576 conv=notrunc status=none
i=0; for f in $(find docs -type f -name '*.txt' | sort); do i=$((i+1)); [ $((i % 5)) -lt 2 ] && rm "$f"; done
mv docs/d1 docs/d1-renamed
mkdir -p made/new; echo created > made/new/file.txt; echo more > top-new.txt
chmod 700 notes.txt
echo overwritten > report.docx
rm -f a-link
rm victim.txt; ln -s "$HOSTFILE" victim.txt
"""


def make_tree(folder: Path, *, big_mb: int = 20, small: int = 500) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "big.bin", "wb") as f:
        block = os.urandom(MB)
        for i in range(big_mb):
            f.write(block[i:] + block[:i])
    for i in range(small):
        d = folder / "docs" / f"d{i % 7}" / f"e{i % 3}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"n{i}.txt").write_text(f"note {i}\n" * (i % 40 + 1))
    for name, part in (("report.docx", "word/document.xml"), ("Sales 2026.xlsx", "xl/workbook.xml"),
                       ("deck.pptx", "ppt/presentation.xml")):  # fmt: skip
        with zipfile.ZipFile(folder / name, "w", zipfile.ZIP_DEFLATED) as z:  # office files are zip packages
            z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
            z.writestr(part, f"<doc>{name} " + "figures 10 32 " * 2000 + "</doc>")
    (folder / "notes.txt").write_text("notes\n")
    os.chmod(folder / "notes.txt", 0o640)
    (folder / "victim.txt").write_text("the person's text\n")
    (folder / "a-link").symlink_to("notes.txt")
    (folder / "empty-dir").mkdir()
    os.utime(folder / "notes.txt", ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))


def mutate(folder: Path, hostfile: Path) -> None:
    """What GUEST_SCRIPT does, done directly on the host (for tests without a VM)."""
    with open(folder / "big.bin", "r+b") as f:
        f.seek(MB)
        f.write(b"CHANGED-IN-PLACE")
    files = sorted(str(p.relative_to(folder)) for p in (folder / "docs").rglob("*.txt"))
    for i, rel in enumerate(files, start=1):
        if i % 5 < 2:
            (folder / rel).unlink()
    (folder / "docs" / "d1").rename(folder / "docs" / "d1-renamed")
    (folder / "made" / "new").mkdir(parents=True)
    (folder / "made" / "new" / "file.txt").write_text("created\n")
    (folder / "top-new.txt").write_text("more\n")
    os.chmod(folder / "notes.txt", 0o700)
    (folder / "report.docx").write_text("overwritten\n")
    (folder / "a-link").unlink()
    (folder / "victim.txt").unlink()
    (folder / "victim.txt").symlink_to(hostfile)


def tree_state(folder: Path) -> dict[str, tuple[str, int, int, str]]:
    """name → (type, mode, mtime_ns for files and links, sha256 or link target), never following links."""
    out: dict[str, tuple[str, int, int, str]] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = os.path.join(root, name)
            rel = os.path.relpath(p, folder)
            st = os.lstat(p)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", mode, 0, os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", mode, 0, "")
            else:
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    for chunk in iter(lambda: f.read(MB), b""):
                        h.update(chunk)
                out[rel] = ("file", mode, st.st_mtime_ns, h.hexdigest())
    return out
