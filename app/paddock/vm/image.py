"""The guest image on disk: found, checked, described. Built by build_vm.sh."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from paddock.core.errors import PaddockError
from paddock.core.paths import cache_dir

BUILD_HINT = (
    "Install the paddock package, or run ./scripts/setup.sh from the Paddock source folder "
    "(it builds the image once, with sudo, in about a minute)."
)
SYSTEM_IMAGES = Path("/var/cache/paddock/guest")  # where the README's set-up builds it (root-owned, world-readable)
PACKAGE_IMAGE = Path("/opt/paddock/guest")  # where the Debian package installs it
LAYERS = ("renderer",)  # optional read-only layers over the root, found beside the image (#34)
log = logging.getLogger(__name__)


class ImageError(PaddockError):
    """The guest image is missing or damaged."""


@dataclass(frozen=True)
class Layer:
    """An optional read-only squashfs the guest lays over its root (the document renderer): built
    by ``guest_image/layer.py`` for one base image, in ``<image folder>/../layers/<hash>-<name>/``."""

    name: str
    path: Path
    sha256: str

    @classmethod
    def find(cls, image_root: Path, image_hash: str, name: str) -> Layer | None:
        """The layer built for this image, checked like the image; None when it is absent, made
        for another image, or damaged (then it is never attached, and the log says why)."""
        folder = image_root.parent / "layers" / f"{image_hash}-{name}"
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
            path = folder / f"{name}.squashfs"
            size, digest = int(manifest["sizes"][path.name]), str(manifest["sha256"][path.name])
            if manifest["base"] != image_hash:
                raise ValueError(f"made for the image {manifest['base']}")
            st = path.stat()
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("the sandbox's optional %s layer in %s is not used: %s", name, folder, exc)
            return None
        if st.st_size != size or _sha256(path, st.st_size, st.st_mtime_ns) != digest:
            log.warning("the sandbox's optional %s layer in %s is damaged: not used", name, folder)
            return None
        return cls(name, path, digest)


@dataclass(frozen=True)
class GuestImage:
    root: Path
    kernel: Path
    initrd: Path
    rootfs: Path
    hash: str
    kernel_version: str
    sizes: dict[str, int]
    sha256: dict[str, str]
    layers: tuple[Layer, ...] = field(default=())  # attached read-only after the root, in order

    @classmethod
    def load(cls, root: Path) -> GuestImage:
        """Read and check an image folder; raises ImageError naming what is wrong."""
        manifest_path = root / "manifest.json"
        try:
            manifest = json.loads(manifest_path.read_text())
        except FileNotFoundError as exc:
            raise ImageError(f"The sandbox image is not built yet ({root}).", hint=BUILD_HINT) from exc
        except (OSError, ValueError) as exc:
            raise ImageError(f"The sandbox image's manifest is unreadable: {exc}", hint=BUILD_HINT) from exc
        try:
            image = cls(
                root=root,
                kernel=root / "vmlinux",
                initrd=root / "initrd.cpio",
                rootfs=root / "rootfs.squashfs",
                hash=str(manifest["hash"]),
                kernel_version=str(manifest["kernel_version"]),
                sizes={str(k): int(v) for k, v in dict(manifest["sizes"]).items()},
                sha256={str(k): str(v) for k, v in dict(manifest.get("sha256", {})).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ImageError(f"The sandbox image's manifest is incomplete: {exc}", hint=BUILD_HINT) from exc
        image.verify()
        found = tuple(layer for name in LAYERS if (layer := Layer.find(root, image.hash, name)) is not None)
        return dataclasses.replace(image, layers=found)

    def verify(self) -> None:
        """Every file present, with the size and SHA-256 the build recorded.

        The hash is computed once per file version (path, size, mtime) in this
        process, so a damaged or tampered image is refused before it boots.
        """
        for path in (self.kernel, self.initrd, self.rootfs):
            try:
                st = path.stat()
            except FileNotFoundError as exc:
                raise ImageError(f"The sandbox image is missing {path.name}.", hint=BUILD_HINT) from exc
            expected = self.sizes.get(path.name)
            if expected is not None and st.st_size != expected:
                raise ImageError(
                    f"The sandbox image file {path.name} is damaged ({st.st_size} bytes, expected {expected}).",
                    hint="Rebuild it with ./build_vm.sh --force.",
                )
            digest = self.sha256.get(path.name)
            if digest is not None and _sha256(path, st.st_size, st.st_mtime_ns) != digest:
                raise ImageError(
                    f"The sandbox image file {path.name} is damaged (its checksum does not match).",
                    hint="Rebuild it with ./build_vm.sh --force.",
                )


@functools.lru_cache(maxsize=16)
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def image_candidates() -> list[Path]:
    """Where an image may be, in order: ``$PADDOCK_GUEST_IMAGE``; ``$PADDOCK_CACHE_DIR/guest/current``
    (a developer's own build); the set-up's system-wide build; the package's copy."""
    env = os.environ.get("PADDOCK_GUEST_IMAGE")
    if env:
        return [Path(env)]
    out = []
    if os.environ.get("PADDOCK_CACHE_DIR"):
        out.append(cache_dir() / "guest" / "current")
    return [*out, SYSTEM_IMAGES / "current", PACKAGE_IMAGE]


def find_image(explicit: Path | None = None) -> GuestImage:
    """The image to boot: ``explicit``, else the first of ``image_candidates()`` that is there."""
    if explicit is not None:
        return GuestImage.load(explicit.resolve())
    candidates = image_candidates()
    for path in candidates:
        if (path / "manifest.json").exists():
            return GuestImage.load(path.resolve())
    return GuestImage.load(candidates[0].resolve())  # says what is missing, with the hint
