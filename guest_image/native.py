"""The native guest agent: guest_image/agent/ (Go) built into one static binary.

Built in a build root of its own (debootstrap of the guest suite with its Go packages), never with
the host's tools, so each suite builds with its own toolchain; the binary is cached by the hash of
its inputs (the agent's sources, the protocol, the build script, the suite), so an image rebuilt
for another reason does not build it again. Only the standard library, like build.py.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from buildlib import BuildError, prune, run

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
AGENT = HERE / "agent"
PROTOS = REPO / "protos"
GO_PACKAGES = [
    "golang-go",
    "golang-google-grpc-dev",
    "golang-google-protobuf-dev",
    "golang-golang-x-sys-dev",
    "protobuf-compiler",
    "protoc-gen-go",
    "protoc-gen-go-grpc",
]
INPUTS = [AGENT / "src", AGENT / "build.sh", PROTOS, HERE / "native.py"]


def inputs_hash(suite: str) -> str:
    h = hashlib.sha256(f"{suite} {GO_PACKAGES}".encode())
    for item in INPUTS:
        for f in sorted(p for p in item.rglob("*") if p.is_file()) if item.is_dir() else [item]:
            h.update(str(f.relative_to(REPO)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def build_agent(cache: Path, suite: str, mirror: str, apt_options: list[str]) -> Path:
    """The agent's binary for ``suite``, from the cache or built now (a few minutes: the build
    root's debootstrap). Raises BuildError with the failing step's output."""
    out = cache / "native" / inputs_hash(suite) / "paddock-agent"
    if out.exists():
        print(f"      native agent from the cache: {out}")
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="paddock-agent-build-", dir=cache) as tmp:
        root = Path(tmp) / "root"
        run(["debootstrap", "--variant=minbase", suite, str(root), mirror])
        inside = root / "build"
        shutil.copytree(AGENT, inside / "agent", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(PROTOS, inside / "protos")
        run(["mount", "-t", "proc", "proc", str(root / "proc")])
        try:
            # With apt, not debootstrap's --include: its resolver takes the first of alternatives,
            # and Debian 13's Go packages then conflict (two providers of github.com/golang/protobuf).
            run(["chroot", str(root), "apt-get", *apt_options, "update", "-qq"])
            run(["chroot", str(root), "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", *apt_options, "install",
                 "-y", "-qq", "--no-install-recommends", *GO_PACKAGES])  # fmt: skip
            proc = run(["chroot", str(root), "/bin/sh", "/build/agent/build.sh", "/build/agent/src", "/build/protos",
                        "/build/paddock-agent"], quiet=True)  # fmt: skip
        finally:
            run(["umount", str(root / "proc")])
        print("      " + proc.stdout.decode(errors="replace").strip().replace("\n", "\n      "))
        built = inside / "paddock-agent"
        if not built.exists():
            raise BuildError("the native agent's build made no binary")
        shutil.copy2(built, out.with_suffix(".tmp"))
        out.with_suffix(".tmp").rename(out)
    prune(out.parent.parent, keep=out.parent.name)
    return out
