"""What the command line prints: errors and progress, to stderr."""

from __future__ import annotations

import sys
from collections.abc import Callable


def err(msg: str) -> None:
    print(f"paddock: {msg}", file=sys.stderr, flush=True)


def progress(quiet: bool) -> Callable[[str], None]:
    def say(msg: str) -> None:
        if not quiet:
            print(f"· {msg}", file=sys.stderr, flush=True)

    return say
