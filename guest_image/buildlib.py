"""The guest image build's helpers: running commands, Debian packages, the initramfs.
Only the standard library, like build.py, which imports this file from beside it."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


class BuildError(Exception):
    pass


def step(n: int, total: int, what: str) -> float:
    print(f"[{n}/{total}] {what}", flush=True)
    return time.monotonic()


def run(cmd: list[str], *, quiet: bool = True, **kw: object) -> subprocess.CompletedProcess[bytes]:
    proc: subprocess.CompletedProcess[bytes] = subprocess.run(cmd, capture_output=quiet, **kw)  # type: ignore[call-overload]
    if proc.returncode != 0:
        tail = (proc.stderr or b"").decode(errors="replace")[-2000:] if quiet else ""
        raise BuildError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc


def _build_initramfs(dest: Path, out: Path, busybox: Path) -> None:
    """busybox and /init: nothing to load, the guest kernel has everything built in (kernel.py)."""
    (dest / "bin").mkdir(parents=True)
    shutil.copy2(busybox, dest / "bin" / "busybox")
    shutil.copy2(HERE / "initramfs" / "init", dest / "init")
    (dest / "init").chmod(0o755)
    files = subprocess.run(["find", ".", "-print0"], cwd=dest, capture_output=True, check=True).stdout
    with open(out, "wb") as fh:
        subprocess.run(
            ["cpio", "--null", "-o", "-H", "newc", "--quiet", "--owner=0:0"],
            cwd=dest,
            input=files,
            stdout=fh,
            check=True,
        )
        # Whole pages: QEMU 10's microvm loads the initrd at the top of memory, over its own ACPI
        # tables when the size ends part-way into a page (the DSDT lost, the guest found no disk);
        # a size of whole pages ends below them. The kernel skips the zeros after the archive.
        fh.write(b"\0" * (-fh.tell() % PAGE))


PAGE = 4096


def download_deb(root: Path, package: str, dest: Path, apt_options: list[str]) -> Path:
    """One package of the guest suite, downloaded by the guest root's apt into ``dest``."""
    inside = root / "tmp" / "paddock-download"
    inside.mkdir(parents=True, exist_ok=True)
    run(["chroot", str(root), "sh", "-c", 'cd "$1" && shift && exec apt-get "$@"', "download",
         "/tmp/paddock-download", *apt_options, "download", package])  # fmt: skip
    debs = list(inside.glob(f"{package}_*.deb"))
    if len(debs) != 1:
        raise BuildError(f"apt-get download {package} gave {len(debs)} packages")
    out = dest / debs[0].name
    shutil.move(debs[0], out)
    return out


def fetch_busybox(root: Path, work: Path, apt_options: list[str]) -> Path:
    """The guest suite's static busybox (for the initramfs and the guest's init), not the host's."""
    deb = download_deb(root, "busybox-static", work, apt_options)
    run(["dpkg-deb", "-x", str(deb), str(work / "busybox")])
    for cand in (work / "busybox" / "bin" / "busybox", work / "busybox" / "usr" / "bin" / "busybox"):
        if cand.is_file():
            return cand
    raise BuildError("busybox-static holds no busybox binary")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def check_tools() -> None:
    """Every tool the build runs, on any host: named with its package when missing (the guest's own
    kernel, busybox and root come from the guest suite, never from the host's release; the kernel
    is compiled in a build chroot of that suite, with its compiler)."""
    missing = []
    for tool, pkg in [
        ("debootstrap", "debootstrap"),
        ("mksquashfs", "squashfs-tools"),
        ("cpio", "cpio"),
        ("dpkg-deb", "dpkg"),
        ("gcc", "gcc"),
    ]:
        if shutil.which(tool) is None:
            missing.append(f"{tool} (apt package {pkg})")
    if not any(Path(k).is_file() for k in DEBIAN_KEYRINGS):
        missing.append("Debian's archive keys (apt package debian-archive-keyring)")
    if not Path("/usr/lib/x86_64-linux-gnu/libc.a").is_file() and not Path("/usr/lib64/libc.a").is_file():
        missing.append("the static C library (apt package libc6-dev)")
    if missing:
        raise BuildError(
            "missing tools: " + "; ".join(missing) + "\n  install them with: sudo apt-get install "
            "debootstrap squashfs-tools cpio dpkg gcc libc6-dev debian-archive-keyring"
        )
    if os.geteuid() != 0:
        raise BuildError("building the guest image needs root (debootstrap); run: sudo ./build_vm.sh")


DEBIAN_KEYRINGS = ("/usr/share/keyrings/debian-archive-keyring.gpg", "/usr/share/keyrings/debian-archive-keyring.pgp")


def apt_mirror() -> str:
    """The Debian mirror the host's apt already uses (no host names in the repo)."""
    env = os.environ.get("PADDOCK_DEBIAN_MIRROR")
    if env:
        return env
    candidates = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in candidates:
        try:
            text = path.read_text()
        except OSError:
            continue
        m = re.search(r"^URIs:\s*(\S+/debian)\s*$", text, re.M) or re.search(
            r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+/debian)\s+\S+", text, re.M
        )
        if m:
            return m.group(1)
    raise BuildError(
        "the guest is built from Debian packages and this host's apt names no Debian mirror "
        "(on Ubuntu, say): set PADDOCK_DEBIAN_MIRROR to a Debian mirror's address"
    )


def prune(folder: Path, keep: str, keep_recent: int = 3) -> None:
    """Drop old builds in ``folder`` (images, kernels, agents: each a folder named by its 16-digit
    key), keeping ``keep`` and the newest few (another checkout may still use one)."""
    old = [
        d
        for d in folder.iterdir()
        if d.is_dir() and not d.is_symlink() and re.fullmatch(r"[0-9a-f]{16}", d.name) and d.name != keep
    ]
    old.sort(key=lambda d: d.stat().st_mtime, reverse=True)
    for d in old[keep_recent - 1 :]:
        shutil.rmtree(d, ignore_errors=True)


def _link_current(cache: Path, key: str) -> None:
    link = cache / "guest" / "current"
    tmp = cache / "guest" / f".current-{os.getpid()}"
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(key)
    os.replace(tmp, link)
