"""The VM layer's pure parts: argument building, escaping, state guards, image checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paddock.vm import (
    Accel,
    Daemon,
    FolderSharing,
    GuestImage,
    HostTools,
    ImageError,
    Share,
    StateError,
    VirtualMachine,
    VMConfig,
    VMState,
)
from paddock.vm.config import DEFAULT_TSC_KHZ, host_tsc_khz, kernel_cmdline, qemu_escape


def _fake_image(tmp_path: Path) -> GuestImage:
    root = tmp_path / "img,with,commas"
    root.mkdir()
    sizes = {}
    for name in ("vmlinux", "initrd.cpio", "rootfs.squashfs"):
        (root / name).write_bytes(b"x" * 10)
        sizes[name] = 10
    (root / "manifest.json").write_text(json.dumps({"hash": "h", "kernel_version": "k", "sizes": sizes}))
    return GuestImage.load(root)


def _sharing(daemon: Daemon = Daemon.QEMU_C) -> FolderSharing:
    return FolderSharing(Path("/usr/lib/qemu/virtiofsd"), daemon, "7.2.22", Path("/usr/bin/bwrap"))


def _tools() -> HostTools:
    return HostTools(Path("/usr/bin/qemu-system-x86_64"), _sharing(), Path("/usr/bin/bwrap"))


def test_qemu_escape_doubles_commas_and_refuses_control_characters() -> None:
    assert qemu_escape("/a,b/c") == "/a,,b/c"
    with pytest.raises(Exception, match="control characters"):
        qemu_escape("/a\nb")


def test_user_folder_never_reaches_qemu_arguments(tmp_path: Path) -> None:
    folder = tmp_path / "My Folder,id=evil"
    folder.mkdir()
    image = _fake_image(tmp_path)
    vm = VirtualMachine(
        VMConfig(image=image, accel=Accel.TCG, shares=(Share("workspace", folder, False),), tools=_tools())
    )
    vm.run_dir = tmp_path / "run"
    argv = vm.qemu_argv()
    assert not [a for a in argv if "My Folder" in a]
    assert any("img,,with,,commas" in a for a in argv)
    assert "-nodefaults" in argv and "-sandbox" in argv
    assert not [a for a in argv if a.startswith(("user,", "tap,")) or a == "-netdev" or a == "-nic"]


def test_methods_are_guarded_by_state(tmp_path: Path) -> None:
    vm = VirtualMachine(VMConfig(image=_fake_image(tmp_path), accel=Accel.TCG, tools=_tools()))
    assert vm.state is VMState.STOPPED
    with pytest.raises(StateError, match="needs the VM to be booting"):
        vm.mark_ready()


def test_share_tag_must_be_a_plain_word(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Share("tag,evil=1", tmp_path, False)


def test_damaged_image_is_refused_with_a_fix(tmp_path: Path) -> None:
    image = _fake_image(tmp_path)
    (image.root / "rootfs.squashfs").write_bytes(b"short")
    with pytest.raises(ImageError, match="damaged") as info:
        GuestImage.load(image.root)
    assert info.value.hint and "build_vm.sh --force" in info.value.hint


def test_missing_image_names_the_set_up(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as info:
        GuestImage.load(tmp_path / "nothing")
    assert info.value.hint and "setup.sh" in info.value.hint and "package" in info.value.hint


@pytest.mark.parametrize("daemon", list(Daemon))
def test_the_folder_helper_runs_jailed_with_a_fixed_source(tmp_path: Path, daemon: Daemon) -> None:
    """Both daemons: a user namespace with the person as uid 1000, the filter, a minimal root,
    and the folder only as a bind onto the fixed mount point (read-only where the share is)."""
    folder = tmp_path / "My Folder,source=/etc"
    run = tmp_path / "run"
    mount_point, sock = run / "share-workspace", run / "fs-workspace.sock"
    for read_only in (False, True):
        argv = _sharing(daemon).argv(folder, mount_point, run, sock, read_only=read_only, seccomp_fd=7)
        split = argv.index("--")
        jail, daemon_args = argv[:split], argv[split + 1 :]
        assert jail[:6] == ["/usr/bin/bwrap", "--unshare-user", "--uid", "1000", "--gid", "1000"]
        assert jail[jail.index("--seccomp") : jail.index("--seccomp") + 2] == ["--seccomp", "7"]
        bind = "--ro-bind" if read_only else "--bind"
        assert [bind, str(folder), str(mount_point)] == jail[jail.index(str(folder)) - 1 : jail.index(str(folder)) + 2]
        bound = [jail[i + 1] for i, a in enumerate(jail) if a in ("--bind", "--ro-bind", "--dev-bind")]
        assert "/" not in bound and str(Path.home()) not in bound  # no view of the whole host, nor of home
        assert not [a for a in daemon_args if "My Folder" in a]  # the folder's name never reaches the daemon
        assert any(str(mount_point) in a for a in daemon_args) and any(str(sock) in a for a in daemon_args)


def test_a_flipped_byte_in_the_image_is_refused(tmp_path: Path) -> None:
    import hashlib

    image = _fake_image(tmp_path)
    manifest = json.loads((image.root / "manifest.json").read_text())
    manifest["sha256"] = {n: hashlib.sha256((image.root / n).read_bytes()).hexdigest() for n in manifest["sizes"]}
    (image.root / "manifest.json").write_text(json.dumps(manifest))
    GuestImage.load(image.root)
    data = bytearray((image.root / "rootfs.squashfs").read_bytes())
    data[3] ^= 0x01
    (image.root / "rootfs.squashfs").write_bytes(bytes(data))
    with pytest.raises(ImageError, match="checksum does not match"):
        GuestImage.load(image.root)


def test_started_as_root_the_sandbox_says_to_use_your_own_account(monkeypatch: pytest.MonkeyPatch) -> None:
    import paddock.vm.sharing as sharing

    monkeypatch.setattr(sharing.os, "geteuid", lambda: 0)
    with pytest.raises(sharing.SharingError, match="not as root") as info:
        sharing.find_sharing(Path("/usr/bin/bwrap"))
    assert info.value.hint and "your own account" in info.value.hint


def test_the_guest_is_told_the_hosts_counter_rate(tmp_path: Path) -> None:
    """Under TCG the guest's TSC is the host's: its rate comes from the host's bogomips (2 × MHz),
    and 2 GHz only where the host says nothing plausible."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nbogomips\t: 5187.81\n")
    assert host_tsc_khz(cpuinfo) == 2_593_905
    cpuinfo.write_text("processor\t: 0\nBogoMIPS\t: 50.00\n")  # an Arm host's line: not the TSC
    assert host_tsc_khz(cpuinfo) == DEFAULT_TSC_KHZ
    assert host_tsc_khz(tmp_path / "absent") == DEFAULT_TSC_KHZ
    config = VMConfig(image=_fake_image(tmp_path), accel=Accel.TCG, tools=_tools())
    assert f"tsc_early_khz={host_tsc_khz()}" in kernel_cmdline(config).split()
