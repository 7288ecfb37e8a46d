"""The renderer layer beside a guest image (#34): found only when it was built for that image and
its file is as built; attached read-only, known to the guest's init by its serial."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from paddock.vm import Layer
from paddock.vm.config import _layer_drives


def _layer(images: Path, base: str, data: bytes = b"squashfs bytes", made_for: str | None = None) -> Path:
    folder = images / "layers" / f"{base}-renderer"
    folder.mkdir(parents=True)
    (folder / "renderer.squashfs").write_bytes(data)
    manifest = {"base": made_for or base, "sizes": {"renderer.squashfs": len(data)},
                "sha256": {"renderer.squashfs": hashlib.sha256(data).hexdigest()}}  # fmt: skip
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_a_layer_built_for_the_image_is_found_and_attached_read_only(tmp_path: Path) -> None:
    folder = _layer(tmp_path, "a4b52f88e98b82a7")
    layer = Layer.find(tmp_path / "a4b52f88e98b82a7", "a4b52f88e98b82a7", "renderer")
    assert layer is not None and layer.path == folder / "renderer.squashfs"
    assert Layer.find(tmp_path / "0000000000000000", "0000000000000000", "renderer") is None  # none built


def test_a_damaged_or_foreign_layer_is_never_attached(tmp_path: Path) -> None:
    folder = _layer(tmp_path, "a4b52f88e98b82a7")
    (folder / "renderer.squashfs").write_bytes(b"squashfs bytez")  # same size, other bytes
    assert Layer.find(tmp_path / "a4b52f88e98b82a7", "a4b52f88e98b82a7", "renderer") is None
    _layer(tmp_path, "1111111111111111", made_for="2222222222222222")
    assert Layer.find(tmp_path / "1111111111111111", "1111111111111111", "renderer") is None


def test_the_layer_disk_is_read_only_and_named_for_the_init(tmp_path: Path) -> None:
    class Image:
        layers = (Layer("renderer", tmp_path / "a,b" / "renderer.squashfs", "5" * 64),)

    argv = _layer_drives(Image())  # type: ignore[arg-type]
    assert f"if=none,id=layer0,file={tmp_path}/a,,b/renderer.squashfs,format=raw,readonly=on" in argv
    assert "virtio-blk-device,drive=layer0,serial=paddock-layer" in argv
