"""Guest-chosen strings (file names, commands) shown to a person: never raw.

A name can carry terminal control sequences that redraw the person's terminal (a fake, calm
summary over the real one) or bidirectional overrides that make ``txt.exe`` read as ``exe.txt``.
``shown`` makes every such character visible as an escape; what it returns is safe to print in a
terminal, put in the window, write to the audit log or a notification.
"""

from __future__ import annotations

import unicodedata

# Bidirectional controls and other invisible formatting that changes how text reads.
_INVISIBLE = {0x061C, 0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069}


def shown(text: str, keep: str = "") -> str:
    """``text`` with every control (C0, DEL, C1), bidirectional or other invisible formatting
    character made visible as an escape; ``keep`` names the few to let through (a transcript keeps
    its line breaks and tabs: ``paddock.core.terminal``)."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in keep:
            out.append(ch)
        elif code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0 or code in _INVISIBLE:
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co"):
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)
