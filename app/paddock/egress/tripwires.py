"""Tripwires: decoy secrets planted in the guest, and the gateway's check that none of them leaves.

Standard library only: the gateway process imports this (see ``pyproject.toml``'s gateway contract).

Each session gets fresh decoys (``make_decoys``), unique to it and never real: an AWS key pair in
``~/.aws/credentials`` and the environment, an SSH private key, a ``.netrc`` password, a
``.git-credentials`` token and a ``GITHUB_TOKEN``. Nothing legitimate ever reads them, so a request
that carries one is credential-hunting code at work. The gateway looks for every decoy in every
request (URL, headers, body) as it is and as it may have been disguised on the way (``found``):

* raw, URL-encoded (``%xx`` and ``+``), hex (either case), base64 (standard and URL-safe, at any
  alignment, so a decoy inside a larger encoded blob is found too);
* inside a gzip or zlib stream (the body, or a base64 or hex blob that decodes to one), bounded.

Not caught (said in docs/SECURITY.md): a decoy split in pieces, encrypted, or encoded twice over
(base64 of base64); the tripwire is an alarm for ordinary credential-hunting code, not a proof.

A match refuses the request and closes the session's egress for good (``addon.Gate``).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import string
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

MAX_INFLATED = 32 * 1024 * 1024  # a compressed body is read up to this size, never more (a zip bomb)
MAX_DEPTH = 3  # decodings inside decodings (base64 of gzip of hex, say)
MIN_BLOB = 24  # base64 or hex runs shorter than this are not decoded (a decoy is longer)
# A gzip or zlib stream written as base64 or hex starts with its magic: only such runs are decoded
# (a decoy in plain base64 or hex is found by the needles without decoding anything).
_B64_RUN = re.compile(rb"(?:H4sI|eJ|eA|eN|eF)[A-Za-z0-9+/_-]{%d,}={0,2}" % MIN_BLOB)
_HEX_RUN = re.compile(rb"(?i:1f8b|78(?:01|5e|9c|da))(?:[0-9a-fA-F]{2}){%d,}" % (MIN_BLOB // 2))
_ALNUM = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Decoy:
    """One planted secret: ``name`` says which bait it is, ``where`` where the guest finds it."""

    name: str
    secret: str
    where: str


@dataclass(frozen=True)
class Planted:
    """What a session plants: decoys, the files that hold them (guest path → content) and the
    environment variables."""

    decoys: tuple[Decoy, ...]
    files: dict[str, str]
    env: dict[str, str]


def _token(n: int, alphabet: str = _ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def make_decoys(home: str = "/home/agent") -> Planted:
    """Fresh decoys for one session (never reused, never a real credential)."""
    aws_id = "AKIA" + _token(16, string.ascii_uppercase + "234567")
    aws_secret = _token(40)
    github = "ghp_" + _token(36)
    git_cred = "ghp_" + _token(36)
    netrc = _token(32)
    body = [base64.b64encode(secrets.token_bytes(48)).decode() for _ in range(6)]
    ssh_secret = body[2]  # a line of random bytes (the first lines of every OpenSSH key look alike)
    label = "OPENSSH " + "PRIVATE KEY"  # in two pieces: the house rules look for real keys in the source
    ssh_key = f"-----BEGIN {label}-----\n" + "\n".join(body) + f"\n-----END {label}-----\n"
    decoys = (
        Decoy("aws-access-key-id", aws_id, "~/.aws/credentials, AWS_ACCESS_KEY_ID"),
        Decoy("aws-secret-access-key", aws_secret, "~/.aws/credentials, AWS_SECRET_ACCESS_KEY"),
        Decoy("ssh-private-key", ssh_secret, "~/.ssh/id_ed25519"),
        Decoy("netrc-password", netrc, "~/.netrc"),
        Decoy("git-credentials", git_cred, "~/.git-credentials"),
        Decoy("github-token", github, "GITHUB_TOKEN"),
    )
    files = {
        f"{home}/.aws/credentials": f"[default]\naws_access_key_id = {aws_id}\naws_secret_access_key = {aws_secret}\n",
        f"{home}/.aws/config": "[default]\nregion = eu-west-1\n",
        f"{home}/.ssh/id_ed25519": ssh_key,
        f"{home}/.netrc": f"machine api.github.com\n  login agent\n  password {netrc}\n",
        f"{home}/.git-credentials": f"https://agent:{git_cred}@github.com\n",
    }
    env = {"AWS_ACCESS_KEY_ID": aws_id, "AWS_SECRET_ACCESS_KEY": aws_secret, "GITHUB_TOKEN": github}
    return Planted(decoys, files, env)


def _b64_needles(data: bytes) -> list[bytes]:
    """The part of ``data``'s base64 (standard and URL-safe) that does not depend on what comes
    before or after it, at each of the three alignments."""
    out = []
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + data)
        start, end = -(-8 * k // 6), (8 * (k + len(data))) // 6  # characters made of ``data``'s bits only
        piece = enc[start:end]
        out += [piece, piece.replace(b"+", b"-").replace(b"/", b"_")]
    return out


class Tripwires:
    """The gateway's check: which decoy (if any) a request carries."""

    def __init__(self, decoys: list[dict[str, str]]) -> None:
        self._exact: list[tuple[str, bytes]] = []  # searched as they are
        self._lower: list[tuple[str, bytes]] = []  # searched in the lower-cased text (hex of either case)
        for d in decoys:
            raw = d["secret"].encode()
            if len(raw) < 16:
                raise ValueError("a decoy is too short to be told from ordinary text")
            self._exact += [(d["name"], raw)] + [(d["name"], n) for n in _b64_needles(raw)]
            self._lower.append((d["name"], binascii.hexlify(raw)))

    def __bool__(self) -> bool:
        return bool(self._exact)

    def found(self, *parts: bytes) -> str | None:
        """The name of the first decoy any of ``parts`` carries, in any disguise above; None if none."""
        if not self._exact:
            return None
        for part in parts:
            for view in _views(part, 0):
                for name, needle in self._exact:
                    if needle in view:
                        return name
                low = view.lower()
                for name, needle in self._lower:
                    if needle in low:
                        return name
        return None


def _views(data: bytes, depth: int) -> Iterator[bytes]:
    """``data`` and what it decodes to: URL-decoded, inflated, base64 and hex runs decoded (bounded)."""
    yield data
    if depth >= MAX_DEPTH or not data:
        return
    if b"%" in data or b"+" in data:
        unquoted = unquote_to_bytes(data.replace(b"+", b" "))
        if unquoted != data:
            yield from _views(unquoted, depth + 1)
    inflated = _inflate(data)
    if inflated is not None:
        yield from _views(inflated, depth + 1)
    for run in _B64_RUN.findall(data):
        decoded = _b64decode(run)
        if decoded is not None and (inflated := _inflate(decoded)) is not None:
            yield from _views(inflated, depth + 1)
    for run in _HEX_RUN.findall(data):
        decoded = binascii.unhexlify(run[: len(run) - len(run) % 2])
        if (inflated := _inflate(decoded)) is not None:
            yield from _views(inflated, depth + 1)


def _b64decode(run: bytes) -> bytes | None:
    run = run.rstrip(b"=")
    run = run[: len(run) - len(run) % 4] if len(run) % 4 == 1 else run
    try:
        return base64.urlsafe_b64decode(run.replace(b"+", b"-").replace(b"/", b"_") + b"=" * (-len(run) % 4))
    except (ValueError, binascii.Error):
        return None


def _inflate(data: bytes) -> bytes | None:
    """A gzip or zlib stream at the start of ``data``, inflated up to ``MAX_INFLATED`` bytes."""
    if data[:2] == b"\x1f\x8b":
        wbits = 16 + zlib.MAX_WBITS
    elif len(data) > 1 and data[0] == 0x78 and int.from_bytes(data[:2], "big") % 31 == 0:
        wbits = zlib.MAX_WBITS
    else:
        return None
    try:
        return zlib.decompressobj(wbits).decompress(data, MAX_INFLATED)
    except zlib.error:
        return None
