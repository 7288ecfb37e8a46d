"""Build the Paddock guest image.

    sudo python3 guest_image/build.py [--cache DIR] [--force]

Output (in a system-wide cache folder, /var/cache/paddock unless --cache or
$PADDOCK_CACHE_DIR says otherwise, keyed by a hash of every input, so an
unchanged recipe is not rebuilt; the files are world-readable, because
Paddock runs as the person, never as root):

    <cache>/guest/<hash>/vmlinux          uncompressed kernel (boots via PVH on -M microvm)
    <cache>/guest/<hash>/initrd.cpio      busybox + the modules the root needs + /init
    <cache>/guest/<hash>/rootfs.squashfs  read-only root: Debian minbase, Python 3, grpcio, agent
    <cache>/guest/<hash>/manifest.json    what was built from what
    <cache>/guest/current -> <hash>

Only the standard library is used, so this runs before any virtual
environment exists. Needs root (debootstrap), debootstrap, mksquashfs,
cpio, a static busybox, apt-get and dpkg-deb, and network access to the
Debian mirror the host's apt uses and to PyPI.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SUITE = "bookworm"
KERNEL_META = "linux-image-amd64"
# Modules the initramfs loads, in order (dependencies are added automatically).
MODULES = [
    "virtio_mmio",
    "virtio_pci",
    "virtio_blk",
    "virtio_console",
    "squashfs",
    "overlay",
    "fuse",
    "virtiofs",
]
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
    HERE / "requirements.txt",
    HERE / "office-requirements.txt",
    HERE / "agent" / "paddock_agent.py",
    HERE / "initramfs" / "init",
    REPO / "protos",
    HERE / "rootfs",
]


class BuildError(Exception):
    pass


def step(n: int, total: int, what: str) -> float:
    print(f"[{n}/{total}] {what}", flush=True)
    return time.monotonic()


def run(cmd: list[str], *, quiet: bool = True, **kw: object) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(cmd, capture_output=quiet, **kw)  # type: ignore[call-overload]
    if proc.returncode != 0:
        tail = (proc.stderr or b"").decode(errors="replace")[-2000:] if quiet else ""
        raise BuildError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc


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
    h.update(f"{SUITE} {KERNEL_META} {DEB_PACKAGES} {OFFICE_PACKAGES} {MODULES} {SQUASHFS_COMP}".encode())
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


def check_tools() -> None:
    missing = []
    for tool, pkg in [
        ("debootstrap", "debootstrap"),
        ("mksquashfs", "squashfs-tools"),
        ("cpio", "cpio"),
        ("apt-get", "apt"),
        ("dpkg-deb", "dpkg"),
    ]:
        if shutil.which(tool) is None:
            missing.append(f"{tool} (apt package {pkg})")
    if not _busybox_is_static():
        missing.append("a static busybox at /bin/busybox (apt package busybox-static)")
    if missing:
        raise BuildError(
            "missing tools: " + "; ".join(missing) + "\n  install them with: sudo apt-get install "
            "debootstrap squashfs-tools cpio busybox-static"
        )
    if os.geteuid() != 0:
        raise BuildError("building the guest image needs root (debootstrap); run: sudo ./build_vm.sh")


def _busybox_is_static() -> bool:
    try:
        data = Path("/bin/busybox").read_bytes()
    except OSError:
        return False
    # A dynamically linked ELF names its loader (PT_INTERP); a static one does not.
    return data[:4] == b"\x7fELF" and b"/ld-linux" not in data


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
    raise BuildError("could not find a Debian mirror in the host's apt sources; set PADDOCK_DEBIAN_MIRROR")


def extract_vmlinux(bzimage: Path, out: Path) -> None:
    """Decompress the ELF kernel out of a bzImage (the kernel's scripts/extract-vmlinux)."""
    data = bzimage.read_bytes()
    attempts = [
        (b"\xfd7zXZ\x00", lambda b: lzma.LZMADecompressor().decompress(b)),
        (b"\x1f\x8b\x08", lambda b: gzip.GzipFile(fileobj=__import__("io").BytesIO(b)).read()),
        (b"\x28\xb5\x2f\xfd", _zstd),
    ]
    for magic, fn in attempts:
        pos = data.find(magic)
        while pos != -1:
            try:
                blob = fn(data[pos:])
            except Exception:  # noqa: BLE001 - try the next candidate offset
                blob = b""
            if blob[:4] == b"\x7fELF":
                out.write_bytes(blob)
                return
            pos = data.find(magic, pos + 1)
    raise BuildError(f"could not find a compressed ELF kernel in {bzimage}")


def _zstd(b: bytes) -> bytes:
    if shutil.which("zstd") is None:
        return b""
    return subprocess.run(["zstd", "-dc"], input=b, capture_output=True).stdout


def _module_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".zst"):
        return _zstd(data)
    return data


def _module_name(path: Path) -> str:
    return path.name.split(".ko")[0].replace("-", "_")


def resolve_modules(moddir: Path) -> list[Path]:
    """The modules to load, dependencies first (read from each module's modinfo;
    the package ships no modules.dep, and busybox insmod ignores softdeps)."""
    by_name = {_module_name(p): p for p in moddir.rglob("*.ko*")}
    builtin: set[str] = set()
    builtin_file = moddir / "modules.builtin"
    if builtin_file.exists():
        builtin = {_module_name(Path(t)) for t in builtin_file.read_text().split()}
    order: list[Path] = []

    def visit(name: str) -> None:
        if name in builtin:
            return
        path = by_name.get(name)
        if path is None:
            raise BuildError(f"kernel module {name} is neither built in nor shipped in the kernel package")
        if path in order:
            return
        m = re.search(rb"depends=([A-Za-z0-9_,-]*)\x00", _module_bytes(path))
        for dep in m.group(1).decode().split(",") if m and m.group(1) else []:
            visit(dep.replace("-", "_"))
        order.append(path)

    for name in MODULES:
        visit(name)
    return order


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

        t = step(2, total, "kernel from Debian's linux-image package")
        kdir = work / "kernel"
        kdir.mkdir()
        depends = run(["apt-cache", "depends", KERNEL_META]).stdout.decode()
        m = re.search(r"Depends:\s*(linux-image-[0-9][^\s]*)", depends)
        if not m:
            raise BuildError(f"apt-cache could not resolve {KERNEL_META}; run apt-get update")
        kpkg = m.group(1)
        run(["apt-get", "download", kpkg], cwd=kdir)
        deb = next(kdir.glob("*.deb"))
        run(["dpkg-deb", "-x", str(deb), str(kdir / "x")])
        vmlinuz = next((kdir / "x" / "boot").glob("vmlinuz-*"))
        kver = vmlinuz.name.removeprefix("vmlinuz-")
        moddir = kdir / "x" / "lib" / "modules" / kver
        print(f"      {kpkg} ({kver}) in {time.monotonic() - t:.0f} s")

        t = step(3, total, "Python packages from PyPI: the agent's (grpcio, protobuf) and python-pptx")
        site = root / "opt" / "paddock" / "site"
        _pip_target(site, HERE / "requirements.txt")
        office = root / "usr" / "local" / "lib" / "python3.11" / "dist-packages"
        _pip_target(office, HERE / "office-requirements.txt")

        t = step(4, total, "agent, init and users")
        _install_agent(root)
        print(f"      done in {time.monotonic() - t:.0f} s")

        t = step(5, total, "trim and precompile")
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
        extract_vmlinux(vmlinuz, staging / "vmlinux")

        t = step(7, total, "initramfs (busybox + modules)")
        modules = resolve_modules(moddir)
        _build_initramfs(work / "initrd", modules, staging / "initrd.cpio")

        manifest = {
            "hash": key,
            "suite": SUITE,
            "kernel_package": kpkg,
            "kernel_version": kver,
            "modules": [_module_name(m) for m in modules],
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
        _prune(cache, keep=key)
        sizes = ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in manifest["sizes"].items())
        print(f"guest image ready in {manifest['build_seconds']} s: {out}\n  {sizes}")
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


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


def _install_agent(root: Path) -> None:
    opt = root / "opt" / "paddock"
    (opt / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(HERE / "agent" / "paddock_agent.py", opt / "paddock_agent.py")
    shutil.copy2("/bin/busybox", opt / "bin" / "busybox")
    for src in (HERE / "rootfs").rglob("*"):
        dest = root / src.relative_to(HERE / "rootfs")
        if src.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
    # The generated gRPC code, as the package paddock.guest.v1 (nothing else of the host's).
    gen = opt / "site" / "paddock" / "guest" / "v1"
    gen.mkdir(parents=True, exist_ok=True)
    for pkg in (opt / "site" / "paddock", opt / "site" / "paddock" / "guest"):
        (pkg / "__init__.py").write_text("")
    for f in (REPO / "app" / "paddock" / "guest" / "v1").glob("*.py"):
        shutil.copy2(f, gen / f.name)
    # Make the agent's packages importable by Debian's python3.
    pth = root / "usr" / "lib" / "python3" / "dist-packages" / "paddock-agent.pth"
    pth.parent.mkdir(parents=True, exist_ok=True)
    pth.write_text("/opt/paddock/site\n")
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


def _build_initramfs(dest: Path, modules: list[Path], out: Path) -> None:
    (dest / "bin").mkdir(parents=True)
    (dest / "modules").mkdir()
    shutil.copy2("/bin/busybox", dest / "bin" / "busybox")
    shutil.copy2(HERE / "initramfs" / "init", dest / "init")
    (dest / "init").chmod(0o755)
    names = []
    for src in modules:
        name = _module_name(src) + ".ko"
        (dest / "modules" / name).write_bytes(_module_bytes(src))
        names.append(name)
    (dest / "modules.order").write_text("\n".join(names) + "\n")
    files = subprocess.run(["find", ".", "-print0"], cwd=dest, capture_output=True, check=True).stdout
    with open(out, "wb") as fh:
        subprocess.run(
            ["cpio", "--null", "-o", "-H", "newc", "--quiet", "--owner=0:0"],
            cwd=dest,
            input=files,
            stdout=fh,
            check=True,
        )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _prune(cache: Path, keep: str, keep_recent: int = 3) -> None:
    """Drop old images, keeping the newest few (another checkout may still use one)."""
    images = [
        d
        for d in (cache / "guest").iterdir()
        if d.is_dir() and not d.is_symlink() and re.fullmatch(r"[0-9a-f]{16}", d.name) and d.name != keep
    ]
    images.sort(key=lambda d: d.stat().st_mtime, reverse=True)
    for d in images[keep_recent - 1 :]:
        shutil.rmtree(d, ignore_errors=True)


def _link_current(cache: Path, key: str) -> None:
    link = cache / "guest" / "current"
    tmp = cache / "guest" / f".current-{os.getpid()}"
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(key)
    os.replace(tmp, link)


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
