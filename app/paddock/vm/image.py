"""The guest image on disk: found, checked, described. Built by build_vm.sh."""

from __future__ import annotations

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
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ImageError(f"The sandbox image's manifest is incomplete: {exc}", hint=BUILD_HINT) from exc
        image.verify()
        return image

    def verify(self) -> None:
        """Cheap integrity check: every file present with the size the build recorded."""
        for path in (self.kernel, self.initrd, self.rootfs):
            try:
                size = path.stat().st_size
            except FileNotFoundError as exc:
                raise ImageError(f"The sandbox image is missing {path.name}.", hint=BUILD_HINT) from exc
            expected = self.sizes.get(path.name)
            if expected is not None and size != expected:
                raise ImageError(
                    f"The sandbox image file {path.name} is damaged ({size} bytes, expected {expected}).",
                    hint="Rebuild it with ./build_vm.sh --force.",
                )


def find_image(explicit: Path | None = None) -> GuestImage:
    """The image to boot: ``explicit``, else ``$PADDOCK_GUEST_IMAGE``, else the cache's current one."""
    if explicit is None:
        env = os.environ.get("PADDOCK_GUEST_IMAGE")
        explicit = Path(env) if env else cache_dir() / "guest" / "current"
    return GuestImage.load(explicit.resolve())
