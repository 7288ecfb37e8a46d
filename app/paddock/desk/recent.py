"""The folders the person opened lately, newest first (the window's folder list)."""

from __future__ import annotations

import json
import os
from pathlib import Path

MAX_RECENT = 8


class RecentFolders:
    def __init__(self, path: Path) -> None:
        self.path = path

    def list(self) -> list[Path]:
        """The folders that still exist, newest first; a file that cannot be read is no list."""
        try:
            raw = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return []
        if not isinstance(raw, list):
            return []
        return [Path(p) for p in raw if isinstance(p, str) and Path(p).is_dir()][:MAX_RECENT]

    def remember(self, folder: Path) -> None:
        items = [str(folder)] + [str(p) for p in self.list() if p != folder]
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(items[:MAX_RECENT]))
        os.replace(tmp, self.path)
