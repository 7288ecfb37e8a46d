"""The guest image on disk: found, checked, described. Built by build_vm.sh."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from paddock.core.errors import PaddockError
from paddock.core.paths import cache_dir

BUILD_HINT = "Build it with ./build_vm.sh from the Paddock source folder (takes about a minute)."


class ImageError(PaddockError):
    """The guest image is missing or damaged."""


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
        return image

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


def find_image(explicit: Path | None = None) -> GuestImage:
    """The image to boot: ``explicit``, else ``$PADDOCK_GUEST_IMAGE``, else the cache's current one."""
    if explicit is None:
        env = os.environ.get("PADDOCK_GUEST_IMAGE")
        explicit = Path(env) if env else cache_dir() / "guest" / "current"
    return GuestImage.load(explicit.resolve())
