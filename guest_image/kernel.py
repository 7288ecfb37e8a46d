"""The guest's own kernel: Debian's kernel source, configured by ``kernel/paddock.config``.

Built from the guest suite's own source package (``linux-source`` → ``linux-source-6.1`` on
bookworm), with that suite's own gcc, in a throwaway build chroot of the suite (debootstrap), so
whatever the host runs, the same inputs give the same kernel. The config is ``make allnoconfig``
with the fragment merged by the kernel's own ``scripts/kconfig/merge_config.sh -n``; every line
of the fragment is then checked in the final ``.config``. The ELF ``vmlinux`` boots directly
(PVH), with everything the guest needs built in and no module loading at all.

The kernel is cached under ``<cache>/kernel/<key>``, the key a hash of the source package's
version, the compiler's version, the fragment and this recipe: rebuilding the image for any
other input reuses it (a cold kernel build takes minutes; see docs/BENCHMARKS.md).

Only the standard library, like build.py, which imports this file from beside it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from buildlib import BuildError, prune, run

HERE = Path(__file__).resolve().parent
FRAGMENT = HERE / "kernel" / "paddock.config"
SOURCE_META = "linux-source"  # Debian's metapackage: depends on the suite's linux-source-X.Y
COMPILER_META = "gcc"  # and on the suite's gcc-N
BUILD_PACKAGES = ["make", "gcc", "libc6-dev", "bc", "bison", "flex", "libelf-dev", "xz-utils"]
# Bump when the recipe below changes in a way that changes the kernel (not the fragment: hashed).
RECIPE = "allnoconfig+merge_config -n, make vmlinux, objcopy -S; v1"


@dataclass(frozen=True)
class KernelInputs:
    source_package: str  # linux-source-6.1
    source_version: str  # 6.1.176-1
    compiler_package: str  # gcc-12
    compiler_version: str  # 12.2.0-14+deb12u1

    def key(self) -> str:
        h = hashlib.sha256()
        h.update(
            f"{self.source_package} {self.source_version} {self.compiler_package} "
            f"{self.compiler_version} {RECIPE}\n".encode()
        )
        h.update(fragment_hash().encode())
        return h.hexdigest()[:16]


def fragment_hash() -> str:
    return hashlib.sha256(FRAGMENT.read_bytes()).hexdigest()


def fragment_options() -> dict[str, str]:
    """The fragment's options: name → value ("n" for ``# CONFIG_X is not set``)."""
    options: dict[str, str] = {}
    for line in FRAGMENT.read_text().splitlines():
        line = line.strip()
        m = re.fullmatch(r"# (CONFIG_[A-Za-z0-9_]+) is not set", line)
        if m:
            options[m.group(1)] = "n"
            continue
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.startswith("CONFIG_"):
            raise BuildError(f"{FRAGMENT.name}: not an option line: {line!r}")
        options[name] = value
    return options


def config_values(text: str) -> dict[str, str]:
    """A .config's options: name → value ("n" for ``is not set``)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        m = re.fullmatch(r"# (CONFIG_[A-Za-z0-9_]+) is not set", line)
        if m:
            values[m.group(1)] = "n"
        elif line.startswith("CONFIG_"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def unmet(config_text: str) -> list[str]:
    """The fragment's options the final .config does not have as asked (an unknown name or an
    unmet dependency). An option asked off may be absent: its menu is off."""
    final = config_values(config_text)
    wrong = []
    for name, want in fragment_options().items():
        got = final.get(name, "n")
        if got != want:
            wrong.append(f"{name}={want} (got {got})")
    return wrong


def _candidate(root: Path, package: str, apt_options: list[str]) -> str:
    out = run(["chroot", str(root), "apt-cache", *apt_options, "policy", package]).stdout.decode()
    m = re.search(r"Candidate:\s*(\S+)", out)
    if not m or m.group(1) == "(none)":
        raise BuildError(f"the guest suite's apt has no {package}")
    return m.group(1)


def _depends(root: Path, meta: str, pattern: str, apt_options: list[str]) -> str:
    out = run(["chroot", str(root), "apt-cache", *apt_options, "depends", meta]).stdout.decode()
    m = re.search(rf"Depends:\s*({pattern})\s*$", out, re.M)
    if not m:
        raise BuildError(f"the guest suite's apt could not resolve {meta}")
    return m.group(1)


def resolve_inputs(root: Path, apt_options: list[str]) -> KernelInputs:
    """What the kernel would be built from, asked of the guest root's own apt (its lists are
    fresh from the image build's first step): no build chroot is needed to know the cache key."""
    src = _depends(root, SOURCE_META, r"linux-source-[0-9.]+", apt_options)
    cc = _depends(root, COMPILER_META, r"gcc-[0-9]+", apt_options)
    return KernelInputs(src, _candidate(root, src, apt_options), cc, _candidate(root, cc, apt_options))


def guest_kernel(
    cache: Path, root: Path, work: Path, *, suite: str, mirror: str, apt_options: list[str]
) -> tuple[Path, dict[str, str]]:
    """The guest kernel (built, or from the cache) and what it was built from, for the manifest."""
    inputs = resolve_inputs(root, apt_options)
    out = cache / "kernel" / inputs.key()
    if (out / "info.json").is_file() and (out / "vmlinux").is_file():
        info: dict[str, str] = json.loads((out / "info.json").read_text())
        print(f"      kernel {info['kernel_version']} from the cache ({out})", flush=True)
        return out / "vmlinux", info
    started = time.monotonic()
    chroot = work / "kbuild"
    print(f"      a {suite} build root with {inputs.source_package}, {inputs.compiler_package}, make...", flush=True)
    run(["debootstrap", "--variant=minbase", f"--include={','.join([*BUILD_PACKAGES, inputs.source_package])}",
         suite, str(chroot), mirror])  # fmt: skip
    got = KernelInputs(
        inputs.source_package,
        _installed(chroot, inputs.source_package),
        inputs.compiler_package,
        _installed(chroot, inputs.compiler_package),
    )
    if got != inputs:  # the mirror moved between the two questions: key by what was installed
        inputs, out = got, cache / "kernel" / got.key()
    tarball = next((chroot / "usr" / "src").glob(f"{inputs.source_package}.tar.*"), None)
    if tarball is None:
        raise BuildError(f"{inputs.source_package} holds no /usr/src/{inputs.source_package}.tar.*")
    run(["tar", "-xf", str(tarball), "-C", str(chroot / "usr" / "src")])
    src = f"/usr/src/{inputs.source_package}"
    shutil.copy2(FRAGMENT, chroot / "usr" / "src" / "paddock.config")
    env = ["env", "ARCH=x86_64", "KBUILD_BUILD_USER=paddock", "KBUILD_BUILD_HOST=paddock"]
    run(["chroot", str(chroot), *env, "sh", "-c",
         f"cd {src} && scripts/kconfig/merge_config.sh -n /usr/src/paddock.config"])  # fmt: skip
    config = (chroot / src.lstrip("/") / ".config").read_text()
    wrong = unmet(config)
    if wrong:
        raise BuildError(
            f"the kernel did not take these options of {FRAGMENT.relative_to(HERE.parent)} (unknown, or a "
            f"dependency missing): {', '.join(wrong)}"
        )
    jobs = os.cpu_count() or 1
    print(f"      compiling {inputs.source_package} {inputs.source_version} with {inputs.compiler_package} "
          f"({jobs} jobs); several minutes", flush=True)  # fmt: skip
    _make_with_progress(["chroot", str(chroot), *env, "make", "-C", src, f"-j{jobs}", "vmlinux"])
    release = run(["chroot", str(chroot), *env, "make", "-s", "-C", src, "kernelrelease"]).stdout.decode().strip()
    # Without its symbol table (the kernel keeps its own, kallsyms): the PVH note stays.
    staging = cache / "kernel" / f".{inputs.key()}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    run(["chroot", str(chroot), "objcopy", "-R", ".comment", "-S", f"{src}/vmlinux", "/usr/src/vmlinux.out"])
    shutil.move(chroot / "usr" / "src" / "vmlinux.out", staging / "vmlinux")
    (staging / "config").write_text(config)
    info = {
        "kernel_version": release,
        "source_package": inputs.source_package,
        "source_version": inputs.source_version,
        "compiler": f"{inputs.compiler_package} {inputs.compiler_version}",
        "config_fragment_sha256": fragment_hash(),
        "config_sha256": hashlib.sha256(config.encode()).hexdigest(),
        "build_seconds": f"{time.monotonic() - started:.0f}",
    }
    (staging / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    for d in (out.parent, out):
        d.chmod(0o755)
    print(f"      kernel {release} built in {info['build_seconds']} s, cached in {out}", flush=True)
    prune(out.parent, keep=out.name)
    return out / "vmlinux", info


def _installed(chroot: Path, package: str) -> str:
    return run(["chroot", str(chroot), "dpkg-query", "-W", "-f=${Version}", package]).stdout.decode().strip()


def _make_with_progress(cmd: list[str]) -> None:
    """Run make, printing how far it got every 30 s (it compiles a few thousand files)."""
    started = last = time.monotonic()
    compiled = 0
    tail: list[str] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace") as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail = [*tail[-40:], line]
            if line.lstrip().startswith(("CC ", "AS ")):
                compiled += 1
            now = time.monotonic()
            if now - last >= 30:
                print(f"      ... {compiled} files compiled, {now - started:.0f} s", flush=True)
                last = now
    if proc.returncode != 0:
        raise BuildError(f"the kernel build failed ({proc.returncode}):\n{''.join(tail)}")
    print(f"      {compiled} files compiled in {time.monotonic() - started:.0f} s", flush=True)
