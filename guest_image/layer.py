"""Build the guest's optional renderer layer: LibreOffice (no GUI) and metric-compatible fonts.

    sudo python3 guest_image/layer.py [--cache DIR] [--force]

The base image stays lean: the renderer is a second read-only squashfs, built on top of one base
image (the base's root, mounted read-only under an overlay; apt installs the renderer; the
overlay's upper folder *is* the layer). The host attaches it as a second read-only disk and the
guest's init lays it over the root (``guest_image/initramfs/init``). Without it, previews fall
back to the guest's own drawing (``paddock.desk.previews``).

Output, beside the base image it belongs to (world-readable, keyed by the base's hash and this
recipe's inputs, so an unchanged recipe is not rebuilt)::

    <cache>/guest/layers/<base hash>-renderer/renderer.squashfs
    <cache>/guest/layers/<base hash>-renderer/manifest.json

Only the standard library. Needs root (loop and overlay mounts, chroot) and the Debian mirror
the base image was built from.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import build as base  # noqa: E402
from buildlib import BuildError, _sha256, run  # noqa: E402

NAME = "renderer"
# The -nogui flavours leave out every toolkit (no X, no GTK): about a third of the desktop ones.
PACKAGES = [
    "libreoffice-writer-nogui",  # .docx, .md and .txt -> PDF
    "libreoffice-calc-nogui",  # .xlsx, .csv -> PDF, charts included
    "libreoffice-impress-nogui",  # .pptx -> PDF
    "fonts-liberation2",  # metric-compatible with Arial, Times New Roman, Courier New
    "fonts-crosextra-carlito",  # ... with Calibri (Office's default body font)
    "fonts-crosextra-caladea",  # ... with Cambria
]
TRIM = ["usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/lintian",
        "var/cache/apt", "var/lib/apt/lists", "var/log", "tmp"]  # fmt: skip
COMP = "lz4"  # as the base: read lazily, decompressed fast under software emulation


def layers_dir(cache: Path) -> Path:
    return cache / "guest" / "layers"


def inputs_hash(base_key: str) -> str:
    h = hashlib.sha256()
    h.update((HERE / "layer.py").read_bytes() + b"\0")
    h.update(f"{base_key} {PACKAGES} {TRIM} {COMP}".encode())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _mounted(*mounts: tuple[list[str], Path]) -> Iterator[None]:
    done: list[Path] = []
    try:
        for argv, target in mounts:
            run(["mount", *argv, str(target)])
            done.append(target)
        yield
    finally:
        for target in reversed(done):
            subprocess.run(["umount", "-l", str(target)], capture_output=True)


def build(cache: Path, force: bool) -> Path:
    image = base.build(cache, force=False)  # the base this layer lies over (built when missing)
    base_key = image.name
    key = inputs_hash(base_key)
    out = layers_dir(cache) / f"{base_key}-{NAME}"
    manifest_path = out / "manifest.json"
    if manifest_path.exists() and not force:
        with contextlib.suppress(ValueError, OSError):
            if json.loads(manifest_path.read_text()).get("inputs") == key:
                print(f"renderer layer is up to date: {out}")
                return out
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="paddock-layer-build-", dir=cache))
    try:
        lower, upper, ovl, merged = (work / n for n in ("lower", "upper", "ovl", "merged"))
        for d in (lower, upper, ovl, merged):
            d.mkdir()
        print(f"[1/2] {', '.join(PACKAGES)} with apt over the base image {base_key}", flush=True)
        overlay = f"lowerdir={lower},upperdir={upper},workdir={ovl}"
        with _mounted(
            (["-t", "squashfs", "-o", "ro,loop", str(image / "rootfs.squashfs")], lower),
            (["-t", "overlay", "overlay", "-o", overlay], merged),
            (["-t", "proc", "proc"], merged / "proc"),
            # The guest has no resolver; the build's apt needs the host's, for this run only.
            (["--bind", "/etc/resolv.conf"], merged / "etc" / "resolv.conf"),
        ):
            chroot = ["chroot", str(merged)]
            run([*chroot, "apt-get", *base.APT_OPTIONS, "update", "-qq"])
            run([*chroot, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", *base.APT_OPTIONS, "install",
                 "-y", "-qq", "--no-install-recommends", *PACKAGES])  # fmt: skip
            versions = run([*chroot, "dpkg-query", "-W", "-f", "${Package}=${Version}\\n", *PACKAGES[:3]])
            run([*chroot, "apt-get", "clean"])
            # The font caches, once, so that each guest does not build them (they land in the layer):
            # fontconfig's, and matplotlib's for the agent (built at its first chart otherwise, which
            # with the layer's fonts took over two minutes under a busy host's emulation).
            subprocess.run([*chroot, "fc-cache", "-s"], capture_output=True)
            run(["chroot", "--userspec=1000:1000", str(merged), "env", "HOME=/home/agent",
                 "python3", "-c", "import matplotlib.font_manager"])  # fmt: skip
        print(f"      done in {time.monotonic() - started:.0f} s", flush=True)
        for rel in TRIM:  # only what apt added: the base's own files are not in the upper folder
            shutil.rmtree(upper / rel, ignore_errors=True)
        for rel in ("proc", "etc/resolv.conf"):  # mount points copied up, nothing in them
            p = upper / rel
            if p.is_dir() and not any(p.iterdir()):
                p.rmdir()
        t = time.monotonic()
        print(f"[2/2] squashfs layer ({COMP})", flush=True)
        staging = work / "out"
        staging.mkdir()
        layer = staging / f"{NAME}.squashfs"
        run(["mksquashfs", str(upper), str(layer), "-comp", COMP, "-noappend", "-quiet", "-no-progress"])
        print(f"      done in {time.monotonic() - t:.0f} s", flush=True)
        manifest = {
            "name": NAME,
            "inputs": key,
            "base": base_key,
            "packages": versions.stdout.decode().split(),
            "sizes": {layer.name: layer.stat().st_size},
            "sha256": {layer.name: _sha256(layer)},
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "build_seconds": round(time.monotonic() - started, 1),
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(out)
        for d in (out.parent, out):
            d.chmod(0o755)
        for f in out.iterdir():
            f.chmod(0o644)
        _prune(cache)
        size = manifest["sizes"][layer.name] / 1e6
        print(f"renderer layer ready in {manifest['build_seconds']} s: {out}\n  {size:.1f} MB")
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _prune(cache: Path) -> None:
    """Drop layers whose base image is gone (the base build keeps its newest few)."""
    for d in layers_dir(cache).iterdir():
        if d.is_dir() and not (cache / "guest" / d.name.split("-")[0]).is_dir():
            shutil.rmtree(d, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description="Build the guest's optional renderer layer.")
    parser.add_argument("--cache", type=Path, default=base.default_cache())
    parser.add_argument("--force", action="store_true", help="rebuild even when the inputs are unchanged")
    parser.add_argument("--print-hash", action="store_true", help="print the base's and the layer's hashes and exit")
    ns = parser.parse_args()
    if ns.print_hash:
        print(base.inputs_hash(), inputs_hash(base.inputs_hash()))
        return 0
    try:
        build(ns.cache.resolve(), ns.force)
    except BuildError as exc:
        print(f"build_vm: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
