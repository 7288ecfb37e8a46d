"""The guest image build's helpers: running commands, the kernel, its modules, the initramfs.
Only the standard library, like build.py, which imports this file from beside it."""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
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


def extract_vmlinux(bzimage: Path, out: Path) -> None:
    """Decompress the ELF kernel out of a bzImage (the kernel's scripts/extract-vmlinux)."""
    data = bzimage.read_bytes()
    attempts: list[tuple[bytes, Callable[[bytes], bytes]]] = [
        (b"\xfd7zXZ\x00", lambda b: lzma.LZMADecompressor().decompress(b)),
        (b"\x1f\x8b\x08", lambda b: gzip.GzipFile(fileobj=__import__("io").BytesIO(b)).read()),
        (b"\x28\xb5\x2f\xfd", _zstd),
    ]
    for magic, fn in attempts:
        pos = data.find(magic)
        while pos != -1:
            try:
                blob = fn(data[pos:])
            except BuildError:
                raise
            except Exception:  # noqa: BLE001 - try the next candidate offset
                blob = b""
            if blob[:4] == b"\x7fELF":
                out.write_bytes(blob)
                return
            pos = data.find(magic, pos + 1)
    raise BuildError(f"could not find a compressed ELF kernel in {bzimage}")


def _zstd(b: bytes) -> bytes:
    if shutil.which("zstd") is None:
        raise BuildError("the kernel or its modules are zstd-compressed and zstd is missing (apt package zstd)")
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


SIG_MAGIC = b"~Module signature appended~\n"


def unsigned(module: bytes) -> bytes:
    """A kernel module without its appended signature. The guest kernel checks the signature of
    every signed module it loads (a SHA-256 of the whole module and an RSA verification, in the
    emulated CPU at every boot); unsigned, it loads it all the same (the guest kernel does not
    enforce signatures) and notes a taint once. What the signature would prove, the host already
    checked: the initramfs is built from the pinned kernel package and its SHA-256 is verified
    before every boot (``GuestImage.verify``)."""
    if not module.endswith(SIG_MAGIC):
        return module
    # struct module_signature (12 bytes) before the magic; its last 4 bytes: the signature's length.
    info_end = len(module) - len(SIG_MAGIC)
    sig_len = int.from_bytes(module[info_end - 4 : info_end], "big")
    start = info_end - 12 - sig_len
    if start <= 0:
        raise BuildError("a kernel module's signature block is malformed")
    return module[:start]


def _build_initramfs(dest: Path, modules: list[Path], out: Path, busybox: Path) -> None:
    (dest / "bin").mkdir(parents=True)
    (dest / "modules").mkdir()
    shutil.copy2(busybox, dest / "bin" / "busybox")
    shutil.copy2(HERE / "initramfs" / "init", dest / "init")
    (dest / "init").chmod(0o755)
    names = []
    for src in modules:
        name = _module_name(src) + ".ko"
        (dest / "modules" / name).write_bytes(unsigned(_module_bytes(src)))
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
        # Whole pages: QEMU 10's microvm loads the initrd at the top of memory, over its own ACPI
        # tables when the size ends part-way into a page (the DSDT lost, the guest found no disk);
        # a size of whole pages ends below them. The kernel skips the zeros after the archive.
        fh.write(b"\0" * (-fh.tell() % PAGE))


PAGE = 4096


def fetch_kernel(root: Path, kdir: Path, suite: str, meta: str, apt_options: list[str]) -> tuple[str, str, Path, Path]:
    """Step 2: the guest suite's kernel package (asked of the guest root's own apt, never the
    host's: the host may run another release or distribution), unpacked in ``kdir``:
    (package, version, vmlinuz, modules folder)."""
    kdir.mkdir()
    depends = run(["chroot", str(root), "apt-cache", *apt_options, "depends", meta]).stdout.decode()
    m = re.search(r"Depends:\s*(linux-image-[0-9][^\s]*)", depends)
    if not m:
        raise BuildError(f"the {suite} root's apt could not resolve {meta}")
    kpkg = m.group(1)
    x = kdir / "x"
    deb = download_deb(root, kpkg, kdir, apt_options)
    run(["dpkg-deb", "-x", str(deb), str(x)])
    vmlinuz = next((x / "boot").glob("vmlinuz-*"), None)
    if vmlinuz is None:
        raise BuildError(f"{kpkg} holds no /boot/vmlinuz-*")
    kver = vmlinuz.name.removeprefix("vmlinuz-")
    # Older packages keep modules under /lib/modules, newer ones (merged /usr) under /usr/lib/modules.
    for moddir in (x / "lib" / "modules" / kver, x / "usr" / "lib" / "modules" / kver):
        if moddir.is_dir():
            return kpkg, kver, vmlinuz, moddir
    raise BuildError(f"{kpkg} ships no modules folder for {kver}")


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
    kernel, busybox and root come from the guest suite, never from the host's release)."""
    missing = []
    for tool, pkg in [
        ("debootstrap", "debootstrap"),
        ("mksquashfs", "squashfs-tools"),
        ("cpio", "cpio"),
        ("dpkg-deb", "dpkg"),
        ("gcc", "gcc"),
        ("zstd", "zstd"),
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
            "debootstrap squashfs-tools cpio dpkg gcc libc6-dev zstd debian-archive-keyring"
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
