"""How to boot a sandbox is one frozen value (``BootRequest``): a misspelled option is an error
before anything starts, never an option silently left out (a ``keepr=`` that dropped the change
guard's keeper used to boot a sandbox without it), and a request cannot change on its way down."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from paddock.sandbox import BootRequest, Sandbox


def test_a_misspelled_boot_option_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="keepr"):
        asyncio.run(Sandbox.boot(tmp_path, keepr=object()))


def test_a_boot_request_is_frozen(tmp_path: Path) -> None:
    request = BootRequest(tmp_path, memory_mib=512)
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.keeper = object()  # type: ignore[misc]
    assert dataclasses.replace(request, guest_root=True).memory_mib == 512
