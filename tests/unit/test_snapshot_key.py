"""The saved sandbox is keyed by the image's files as built, not only by its inputs' hash.

A rebuild from the same inputs gives a different squashfs under the same hash; a guest woken from
a state saved over the other root reads garbage (every command fails with an I/O error). Two
images with one hash and different files must never share a saved sandbox.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from paddock.sandbox import snapshot_path
from paddock.vm import Accel, GuestImage


def _image(root: Path, rootfs_digest: str) -> GuestImage:
    return GuestImage(
        root=root, kernel=root / "vmlinux", initrd=root / "initrd.cpio", rootfs=root / "rootfs.squashfs",
        hash="a4b52f88e98b82a7", kernel_version="6.1", sizes={},
        sha256={"vmlinux": "1" * 64, "initrd.cpio": "2" * 64, "rootfs.squashfs": rootfs_digest},
    )  # fmt: skip


def test_a_rebuild_with_the_same_inputs_gets_its_own_saved_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PADDOCK_CACHE_DIR", str(tmp_path / "cache"))
    first = snapshot_path(_image(tmp_path / "a", "3" * 64), Accel.TCG, 1024)
    rebuilt = snapshot_path(_image(tmp_path / "b", "4" * 64), Accel.TCG, 1024)
    same_files = snapshot_path(_image(tmp_path / "c", "3" * 64), Accel.TCG, 1024)
    assert first != rebuilt
    assert first == same_files  # where the image lives does not matter, what it holds does


def test_the_renderer_layer_is_part_of_the_saved_sandboxs_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A guest saved without the renderer layer (or with another build of it) never wakes over a
    different set of disks (#34): the layer's digest is part of the key."""
    import dataclasses

    from paddock.vm import Layer

    monkeypatch.setenv("PADDOCK_CACHE_DIR", str(tmp_path / "cache"))
    base = _image(tmp_path / "a", "3" * 64)
    with_layer = dataclasses.replace(base, layers=(Layer("renderer", tmp_path / "r.squashfs", "5" * 64),))
    rebuilt = dataclasses.replace(base, layers=(Layer("renderer", tmp_path / "r.squashfs", "6" * 64),))
    keys = {snapshot_path(i, Accel.TCG, 1024) for i in (base, with_layer, rebuilt)}
    assert len(keys) == 3
