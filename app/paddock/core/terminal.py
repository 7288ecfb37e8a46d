"""Everything the command line writes to a person's terminal goes through one escape.

The model's text, the command lines it runs, the last line a failed command printed, a file
name in a warning, an error that quotes the guest: any of them can carry terminal control
sequences (C0 such as ESC, C1 such as CSI, bidirectional overrides) that redraw the screen, set
the window title, or make a name read backwards. Instead of escaping at each call site (and
missing the next one), ``paddock``'s own ``sys.stdout`` and ``sys.stderr`` are wrapped for the
whole command: every ``print``, ``write`` and log line passes through ``paddock.core.text.shown``,
keeping only line breaks and tabs. The raw byte streams stay reachable as ``.buffer`` for the one
output whose contract is raw bytes: ``paddock sandbox exec`` streams the command's own output,
as ``ssh`` does.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator
from typing import IO, TextIO

from paddock.core.text import shown

KEEP = "\n\t"


def for_terminal(text: str) -> str:
    """``text`` as it may be written to a terminal: every control made visible, lines kept."""
    return shown(text, keep=KEEP)


class Escaping(io.TextIOBase):
    """A text stream that escapes what is written before passing it on."""

    def __init__(self, raw: TextIO) -> None:
        super().__init__()
        self.raw = raw

    def write(self, s: str) -> int:
        self.raw.write(for_terminal(s))
        return len(s)

    def flush(self) -> None:
        self.raw.flush()

    def fileno(self) -> int:
        return self.raw.fileno()

    def isatty(self) -> bool:
        return self.raw.isatty()

    def writable(self) -> bool:
        return True

    @property
    def buffer(self) -> IO[bytes]:
        return self.raw.buffer

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.raw.encoding


@contextlib.contextmanager
def escaped_output() -> Iterator[None]:
    """For the duration: ``sys.stdout`` and ``sys.stderr`` escape what is written to them."""
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Escaping(out), Escaping(err)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        sys.stdout, sys.stderr = out, err
