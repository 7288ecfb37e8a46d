"""Build the Paddock guest image.

    sudo python3 guest_image/build.py [--cache DIR] [--force]

Output (in a system-wide cache folder, /var/cache/paddock unless --cache or
$PADDOCK_CACHE_DIR says otherwise, keyed by a hash of every input, so an
unchanged recipe is not rebuilt; the files are world-readable, because
Paddock runs as the person, never as root):

    <cache>/guest/<hash>/vmlinux          the guest's own kernel, everything built in (kernel.py;
                                          boots via PVH on -M microvm)
    <cache>/guest/<hash>/initrd.cpio      busybox + /init
    <cache>/guest/<hash>/rootfs.squashfs  read-only root: Debian minbase, Python 3, the native agent
    <cache>/guest/<hash>/manifest.json    what was built from what
    <cache>/guest/current -> <hash>

Only the standard library is used, so this runs before any virtual
environment exists. Needs root (debootstrap), debootstrap, mksquashfs,
cpio, dpkg-deb, gcc with the static C library, zstd and Debian's archive
keys, and network access to a Debian mirror (the one the host's apt uses,
or $PADDOCK_DEBIAN_MIRROR) and to PyPI. Whatever the host runs (Debian 12,
Debian 13, Ubuntu), the guest's root, kernel (built from the suite's own
kernel source with its own gcc, cached under <cache>/kernel) and busybox all
come from the pinned guest suite below, so the same inputs give the same image.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # buildlib.py beside this file, however this file is started
from buildlib import (  # noqa: E402
    BuildError,
    _build_initramfs,
    _link_current,
    _sha256,
    apt_mirror,
    check_tools,
    fetch_busybox,
    prune,
    run,
    step,
)
from kernel import guest_kernel  # noqa: E402
from native import build_agent  # noqa: E402

REPO = HERE.parent
SUITE = "bookworm"
# The knowledge-work toolkit (#11): documents, spreadsheets, slides, PDFs and charts. The root is
# a lazily read squashfs, so these cost image size, not boot time.
OFFICE_PACKAGES = [
    "python3-openpyxl",  # .xlsx with formulas
    "python3-docx",  # .docx
    "python3-pandas",  # tables, .csv
    "python3-matplotlib",  # charts as PNG/SVG/PDF
    "python3-pypdf",  # read PDF text
    "python3-reportlab",  # write PDF
    "poppler-utils",  # pdftotext, pdftoppm
    "pandoc",  # Markdown to .docx
    # fonttools (a matplotlib dependency) needs "scipy | munkres"; scipy would drag in pythran, gcc
    # and boost (about 300 MB of squashfs). debootstrap always takes the first alternative, so the
    # toolkit is installed afterwards with apt, which takes the alternative that is asked for.
    "python3-munkres",
]
# The host's mirror may be a fixed snapshot whose Release files are past their Valid-Until.
APT_OPTIONS = ["-o", "Acquire::Check-Valid-Until=false", "-o", "Acquire::Check-Date=false"]
DEB_PACKAGES = ["python3"]
# lz4 decompresses several times faster than zstd under software emulation,
# and the root is read lazily: boot time matters more than the image size.
SQUASHFS_COMP = "lz4"
TRIM = [
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "usr/share/zoneinfo",
    "var/cache/apt",
    "var/lib/apt/lists",
    "var/cache/debconf",
    "var/log",
]
INPUTS = [
    HERE / "build.py",
    HERE / "buildlib.py",
    HERE / "kernel.py",
    HERE / "kernel",
    HERE / "helper",
    HERE / "native.py",
    HERE / "office-requirements.txt",
    HERE / "agent",
    HERE / "initramfs" / "init",
    REPO / "protos",
    HERE / "rootfs",
]


def inputs_hash() -> str:
    h = hashlib.sha256()
    files: list[Path] = []
    for item in INPUTS:
        found = sorted(p for p in item.rglob("*") if p.is_file()) if item.is_dir() else [item]
        files.extend(p for p in found if "__pycache__" not in p.parts and p.suffix != ".pyc")
    for f in files:
        h.update(str(f.relative_to(REPO)).encode() + b"\0")
        h.update(f.read_bytes() + b"\0")
        h.update(oct(f.stat().st_mode & 0o111).encode())
    h.update(f"{SUITE} {DEB_PACKAGES} {OFFICE_PACKAGES} {SQUASHFS_COMP}".encode())
    return h.hexdigest()[:16]


SYSTEM_CACHE = Path("/var/cache/paddock")  # images are read from here by every user of the machine


def default_cache() -> Path:
    env = os.environ.get("PADDOCK_CACHE_DIR")
    return Path(env) if env else SYSTEM_CACHE


def _publish(out: Path) -> None:
    """Make the image readable by every user (the build runs as root; Paddock runs as the person)."""
    for d in (out.parent.parent, out.parent, out):
        d.chmod(0o755)
    for f in out.iterdir():
        f.chmod(0o644)


def build(cache: Path, force: bool) -> Path:
    key = inputs_hash()
    out = cache / "guest" / key
    if (out / "manifest.json").exists() and not force:
        print(f"guest image is up to date: {out}")
        with contextlib.suppress(PermissionError):
            _publish(out)  # an image built before images were world-readable
        _link_current(cache, key)
        return out
    check_tools()
    mirror = apt_mirror()
    total = 7
    started = time.monotonic()
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="paddock-guest-build-", dir=cache))
    try:
        root = work / "root"
        _bootstrap_root(root, mirror, total)

        t = step(2, total, f"kernel (built from {SUITE}'s own source, or cached) and busybox")
        vmlinux, kinfo = guest_kernel(cache, root, work, suite=SUITE, mirror=mirror, apt_options=APT_OPTIONS)
        busybox = fetch_busybox(root, work, APT_OPTIONS)
        print(f"      done in {time.monotonic() - t:.0f} s")

        t = step(3, total, "python-pptx from PyPI; the native agent (Go, in a build root of its own)")
        agent = build_agent(cache, SUITE, mirror, APT_OPTIONS)
        office = root / "usr" / "local" / "lib" / "python3.11" / "dist-packages"
        _pip_target(office, HERE / "office-requirements.txt")

        t = step(4, total, "agent, init and users")
        _install_agent(root, busybox, agent)
        print(f"      done in {time.monotonic() - t:.0f} s")

        t = step(5, total, "trim and precompile")
        _trim_and_precompile(root)

        t = step(6, total, f"squashfs root ({SQUASHFS_COMP})")
        staging = work / "out"
        staging.mkdir()
        run(
            [
                "mksquashfs",
                str(root),
                str(staging / "rootfs.squashfs"),
                "-comp",
                SQUASHFS_COMP,
                "-noappend",
                "-quiet",
                "-no-progress",
            ]
        )
        shutil.copy2(vmlinux, staging / "vmlinux")
        shutil.copy2(vmlinux.parent / "config", staging / "kernel.config")  # what it was built with

        t = step(7, total, "initramfs (busybox + /init)")
        _build_initramfs(work / "initrd", staging / "initrd.cpio", busybox)

        manifest = {
            "hash": key,
            "suite": SUITE,
            "kernel_package": f"{kinfo['source_package']} {kinfo['source_version']}",
            "kernel_version": kinfo["kernel_version"],
            "kernel": kinfo,
            "sizes": {p.name: p.stat().st_size for p in staging.iterdir()},
            "sha256": {p.name: _sha256(p) for p in staging.iterdir()},
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "build_seconds": round(time.monotonic() - started, 1),
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(out)
        _publish(out)
        _link_current(cache, key)
        prune(cache / "guest", keep=key)
        sizes = ", ".join(
            f"{p.name} {p.stat().st_size / 1e6:.1f} MB" for p in out.iterdir() if p.name != "manifest.json"
        )
        print(f"guest image ready in {manifest['build_seconds']} s: {out}\n  {sizes}")
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _bootstrap_root(root: Path, mirror: str, total: int) -> None:
    """Step 1: a minimal Debian in ``root``, then the office toolkit with apt."""
    t = step(1, total, f"debootstrap {SUITE} (minbase + {', '.join(DEB_PACKAGES)}); about a minute")
    run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(DEB_PACKAGES)}",
            SUITE,
            str(root),
            mirror,
        ]
    )
    print(f"      done in {time.monotonic() - t:.0f} s")
    t = time.monotonic()
    print(f"      the office toolkit with apt ({', '.join(OFFICE_PACKAGES)}); a minute or two", flush=True)
    run(["chroot", str(root), "apt-get", *APT_OPTIONS, "update", "-qq"])
    run(["chroot", str(root), "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", *APT_OPTIONS, "install",
         "-y", "-qq", "--no-install-recommends", *OFFICE_PACKAGES])  # fmt: skip
    run(["chroot", str(root), "apt-get", "clean"])
    print(f"      done in {time.monotonic() - t:.0f} s")


def _trim_and_precompile(root: Path) -> None:
    """Step 5: drop what the guest never reads, and compile its Python ahead of time."""
    for rel in TRIM:
        shutil.rmtree(root / rel, ignore_errors=True)
    (root / "var" / "log").mkdir(parents=True, exist_ok=True)
    run(
        [
            "chroot",
            str(root),
            "/usr/bin/python3",
            "-m",
            "compileall",
            "-q",
            "-j",
            "2",
            "/opt/paddock",
            "/usr/lib/python3.11",
            "/usr/local/lib/python3.11",
        ],
        quiet=True,
    )


def _pip_target(target: Path, requirements: Path) -> None:
    """Wheels for the guest's Python 3.11, unpacked into ``target`` (no dependency resolution:
    the requirement files pin everything they need beyond Debian's packages)."""
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--only-binary=:all:",
            "--platform",
            "manylinux2014_x86_64",
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            "--target",
            str(target),
            "-r",
            str(requirements),
        ]
    )


def _install_agent(root: Path, busybox: Path, agent: Path) -> None:
    opt = root / "opt" / "paddock"
    (opt / "bin").mkdir(parents=True, exist_ok=True)
    # How every command starts: one exec of a small static binary (see the source's header).
    # And its way in: the port joined to the agent's socket by a small static relay (relay.c).
    for name in ("runas", "relay"):
        run(["gcc", "-static", "-Os", "-Wall", "-Wextra", "-Werror", "-o", str(opt / "bin" / f"paddock-{name}"),
             str(HERE / "helper" / f"{name}.c")])  # fmt: skip
    # The agent: one static binary (native.py), started by init (rootfs/etc/inittab).
    shutil.copy2(agent, opt / "bin" / "paddock-agent")
    (opt / "bin" / "paddock-agent").chmod(0o755)
    shutil.copy2(busybox, opt / "bin" / "busybox")
    for src in (HERE / "rootfs").rglob("*"):
        dest = root / src.relative_to(HERE / "rootfs")
        if src.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
    # The unprivileged user that commands run as, and the mount points.
    with open(root / "etc" / "passwd", "a") as fh:
        fh.write("agent:x:1000:1000:Paddock agent:/home/agent:/bin/sh\n")
    with open(root / "etc" / "group", "a") as fh:
        fh.write("agent:x:1000:\n")
    for d in ("workspace", "home/agent/.claude"):
        (root / d).mkdir(parents=True, exist_ok=True)
    os.chown(root / "home" / "agent", 1000, 1000)
    (root / "home" / "agent").chmod(0o755)
    (root / "etc" / "hostname").write_text("paddock\n")
    # No resolver: the guest has no network, and names are the gateway's job.
    resolv = root / "etc" / "resolv.conf"
    if resolv.is_symlink() or resolv.exists():
        resolv.unlink()
    resolv.write_text("# no DNS in the Paddock guest\n")


def main() -> int:
    parser = argparse.ArgumentParser(description="Build the Paddock guest image.")
    parser.add_argument(
        "--cache",
        type=Path,
        default=default_cache(),
        help="cache folder (default: $PADDOCK_CACHE_DIR or /var/cache/paddock)",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even when the inputs are unchanged")
    parser.add_argument("--print-hash", action="store_true", help="print the inputs' hash and exit")
    ns = parser.parse_args()
    if ns.print_hash:
        print(inputs_hash())
        return 0
    try:
        build(ns.cache.resolve(), ns.force)
    except BuildError as exc:
        print(f"build_vm: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("build_vm: interrupted; nothing was changed in the cache", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
